"""The journey API, on the worker's web server, with the review API's tokens.

GET /payouts/{payout_id}   the payout's journey (docs/journey.md); 404 when unknown
GET /orders/{order_id}     {"order_id", "payouts": [journey...]}: an order id is unique per seller only
GET /sellers/{seller_id}   {"seller_id", "payouts": [journey...]}: waiting for review, latest approved

Any worker answers. What is known of a payout lives in two partitions (the ledger entry with its
seller's, the review with its own id's) and an order's payouts with their sellers', so no one key
routes a request: the worker asked gathers every worker's part of it, in two requests each at most
(`/journey-index`: the payouts of an order or seller; `/journey-facts`: what is known of them).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import orjson
from faust import web

from worker.journey.facts import Facts
from worker.journey.rules import journey, merged_facts
from worker.runtime.app import PipelineApp
from worker.runtime.auth import requires_token, reviewers_from
from worker.runtime.peers import ask_others, unreachable
from worker.settings import Settings

#: Payout ids asked of the other workers in one request.
MAX_IDS = 100


def register(app: PipelineApp, facts: Facts, settings: Settings) -> None:
    """Add the journey API to `app`."""
    guarded = requires_token(reviewers_from(settings))
    gather = Gather(app, facts)

    @app.page("/payouts/{payout_id}", name="payout-journey")
    class PayoutJourney(web.View):
        @guarded
        async def get(self, request: web.Request, payout_id: str) -> web.Response:
            """One payout's journey, and the workers that did not answer (their part is missing)."""
            found, missing = await gather.journeys(request, [payout_id])
            if found:
                return _json(self, {**found[0], "unreachable_workers": missing})
            return _unknown(self, f"payout {payout_id}", missing)

    @app.page("/journey-facts", name="journey-facts")
    class JourneyFacts(web.View):
        @guarded
        async def get(self, request: web.Request) -> web.Response:
            """This worker's part: what it knows of `ids` (comma-separated payout ids)."""
            ids = [i for i in request.query.get("ids", "").split(",") if i][:MAX_IDS]
            return _json(self, {"facts": await facts.of(ids)})

    @app.page("/journey-index", name="journey-index")
    class JourneyIndex(web.View):
        @guarded
        async def get(self, request: web.Request) -> web.Response:
            """This worker's part: the payouts of `order_id` or of `seller_id` it knows."""
            if "order_id" in request.query:
                return _json(self, {"payout_ids": facts.payouts_of_order(request.query["order_id"])})
            return _json(self, {"payout_ids": facts.payouts_of_seller(request.query.get("seller_id", ""))})

    for kind, name in (("orders", "order_id"), ("sellers", "seller_id")):
        _index_page(app, guarded, gather, kind, name)


def _index_page(app: PipelineApp, guarded: Any, gather: Gather, kind: str, name: str) -> None:
    @app.page(f"/{kind}/{{{name}}}", name=f"{kind}-journeys")
    class Index(web.View):
        @guarded
        async def get(self, request: web.Request, **match: str) -> web.Response:
            """The journeys of the payouts an order (or a seller) has."""
            key = match[name]
            ids, missing = await gather.index(request, name, key)
            found, unanswered = await gather.journeys(request, ids)
            if not found:
                return _unknown(self, f"{name.removesuffix('_id')} {key}", missing + unanswered)
            return _json(self, {name: key, "payouts": found, "unreachable_workers": missing + unanswered})


class Gather:
    """Asks this worker and every other one for their part of a journey."""

    def __init__(self, app: PipelineApp, facts: Facts) -> None:
        self.app, self.facts = app, facts

    async def index(self, request: web.Request, name: str, key: str) -> tuple[list[str], list[str]]:
        """The payout ids every worker knows for an order or a seller; the workers that did not answer."""
        local = self.facts.payouts_of_order if name == "order_id" else self.facts.payouts_of_seller
        answers = await self._others(request, "/journey-index", {name: key})
        ids = [*local(key), *(i for _, body in answers if body for i in body["payout_ids"])]
        return list(dict.fromkeys(ids))[:MAX_IDS], unreachable(answers)

    async def journeys(self, request: web.Request, ids: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """The journeys of `ids` that any worker knows; the workers that did not answer."""
        if not ids:
            return [], []
        answers = await self._others(request, "/journey-facts", {"ids": ",".join(ids)})
        parts = [await self.facts.of(ids), *(body["facts"] for _, body in answers if body)]
        merged = merged_facts(parts)
        found = [journey(i, merged[i]) for i in ids if i in merged]
        return [j for j in found if j is not None], unreachable(answers)

    def _others(self, request: web.Request, path: str, query: dict[str, Any]) -> Awaitable[Any]:
        token = request.headers.get("Authorization", "")
        return ask_others(self.app, self.facts.ledger.table, path, token, query)


def _unknown(view: web.View, what: str, unanswered: list[str]) -> web.Response:
    if unanswered:  # it may be on the worker that did not answer
        return _json(view, {"error": f"no answer from {', '.join(unanswered)}: try again"}, status=503)
    return _json(view, {"error": f"no {what} is known"}, status=404)


def _json(view: web.View, document: Any, status: int = 200) -> web.Response:
    return view.bytes(orjson.dumps(document), content_type="application/json", status=status)
