"""The journey API, on the worker's web server, with the review API's tokens.

GET /payouts/{payout_id}   the payout's journey (docs/journey.md); 404 when unknown
GET /orders/{order_id}     {"order_id", "payouts": [journey...]}: an order id is unique per seller only
GET /sellers/{seller_id}   {"seller_id", "payouts": [journey...]}: the seller's latest payouts

Any worker answers: Faust's table routing sends the request to the worker that owns the key, and the
journeys an order or seller names are fetched from the workers that own them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from faust import web
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from worker.journey.rules import view
from worker.journey.tables import NAMES, JourneyTables
from worker.runtime.app import PipelineApp
from worker.runtime.auth import requires_token, reviewers_from
from worker.settings import Settings

logger = logging.getLogger(__name__)


def register(app: PipelineApp, tables: JourneyTables, settings: Settings) -> None:
    """Add the journey API to `app`."""
    guarded = requires_token(reviewers_from(settings))
    journeys = Journeys(app, tables)

    @app.page("/payouts/{payout_id}", name="payout-journey")
    class PayoutJourney(web.View):
        @guarded
        @app.table_route(table=tables.tables["journeys"], match_info="payout_id")  # type: ignore[arg-type]
        async def get(self, request: web.Request, payout_id: str) -> web.Response:
            """One payout's journey."""
            journey = journeys.local("journeys", payout_id)
            if journey is None:
                return _json(self, {"error": f"no payout {payout_id} is known"}, status=404)
            return _json(self, view(journey))

    for kind, name in (("orders", "order_id"), ("sellers", "seller_id")):
        _index_page(app, guarded, journeys, kind, name)


def _index_page(app: PipelineApp, guarded: Any, journeys: Journeys, kind: str, name: str) -> None:
    table = journeys.tables.tables[kind]

    @app.page(f"/{kind}/{{{name}}}", name=f"{kind}-journeys")
    class Index(web.View):
        @guarded
        @app.table_route(table=table, match_info=name)  # type: ignore[arg-type]
        async def get(self, request: web.Request, **match: str) -> web.Response:
            """The journeys of the payouts an order (or a seller) has, newest first."""
            key = match[name]
            entry = journeys.local(kind, key)
            if entry is None:
                return _json(self, {"error": f"no {name.removesuffix('_id')} {key} is known"}, status=404)
            token = request.headers.get("Authorization", "")
            found = await asyncio.gather(*(journeys.find(p, token) for p in entry["payout_ids"]))
            return _json(self, {name: key, "payouts": [journey for journey in found if journey]})


class Journeys:
    """Reads journeys: here, from the tables this worker owns; elsewhere, from their owner's API."""

    def __init__(self, app: PipelineApp, tables: JourneyTables) -> None:
        self.app, self.tables = app, tables

    def local(self, table: str, key: str) -> dict[str, Any] | None:
        """An entry of a table this worker owns; 503 while the key's partition is moving."""
        if not self.tables.owns(table, key):  # answer from the owner's data, never a standby copy
            raise ServiceUnavailable("the key's partition is moving between workers: try again")
        return self.tables.get(table, key)

    async def find(self, payout_id: str, token: str) -> dict[str, Any] | None:
        """A payout's journey as its owner answers it, or None when unknown or unreachable."""
        owner = URL(str(self.app.router.key_store(NAMES["journeys"], payout_id)))
        if owner == URL(str(self.app.conf.canonical_url)):
            journey = self.local("journeys", payout_id)
            return None if journey is None else view(journey)
        url = owner.with_path(f"/payouts/{payout_id}")
        try:
            async with self.app.http_client.get(url, headers={"Authorization": token}) as response:
                if response.status == 200:
                    return await response.json()  # type: ignore[no-any-return]
        except Exception as exc:  # one worker down must not take the answer down with it
            logger.warning("journey of payout_id=%s: worker %s did not answer: %r", payout_id, owner, exc)
        return None


def _json(view: web.View, document: Any, status: int = 200) -> web.Response:
    return view.bytes(orjson.dumps(document), content_type="application/json", status=status)
