"""The review API, on the worker's own web server. Every route needs `Authorization: Bearer <token>`.

GET  /reviewer                             {"reviewer": name}: whom the token belongs to
GET  /reviews?offset=0&limit=50&overdue=1  pending payouts (only those escalated, with overdue=1),
                                           longest waiting first, from every worker, each with the
                                           seller's history by currency and the comparison in its own
GET  /decisions                            the latest 100 decisions, newest first, from every worker
GET  /reviews/{payout_id}                  one payout: pending (with the seller's history) or decided
POST /reviews/{payout_id}/approve|reject   {"reason": "..."}: 200 applied, 400 bad body, 404 unknown,
                                           409 decided already, 202 still applying

The decision names the reviewer whose token the request carries (see `worker.reviewers`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from faust import web
from faust.web.exceptions import ServiceUnavailable

from worker.errors import InvalidRecord
from worker.review.listing import Listing, paging
from worker.review.records import ReviewDecision, decode_decision_request
from worker.review.routing import forward, owner_of
from worker.review.rules import Outcome, described, refusal
from worker.review.tables import ReviewTables
from worker.runtime import trace
from worker.runtime.app import PipelineApp
from worker.runtime.auth import requires_token, reviewers_from
from worker.runtime.publish import Publisher
from worker.runtime.topics import Topics
from worker.settings import Settings
from worker.wire import encode

logger = logging.getLogger(__name__)

#: How long a POST waits for its decision to be applied before answering 202 Accepted.
APPLY_WAIT_S = 10.0
_REFUSED = {
    Outcome.UNKNOWN: (404, "no payout {} is waiting for review"),
    Outcome.ALREADY_DECIDED: (409, "payout {} has been decided already"),
}


def register(
    app: PipelineApp, topics: Topics, publisher: Publisher, tables: ReviewTables, settings: Settings
) -> None:
    """Add the review API to `app`."""
    people = reviewers_from(settings)
    guarded, as_reviewer = requires_token(people), requires_token(people, as_reviewer=True)
    listing = Listing(app, tables)
    deciding: set[str] = set()  # payouts whose decision this worker is applying right now

    @app.page("/reviewer", name="reviewer")
    class Reviewer(web.View):
        @as_reviewer
        async def get(self, request: web.Request, reviewer: str) -> web.Response:
            """Whom the request's token belongs to (the page shows it)."""
            return json(self, {"reviewer": reviewer})

    @app.page("/reviews", name="reviews")
    class Reviews(web.View):
        @guarded
        async def get(self, request: web.Request) -> web.Response:
            """Pending payouts, longest waiting first, `limit` from `offset`."""
            try:
                offset, limit = paging(request.query)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            overdue = request.query.get("overdue") in ("1", "true")
            if request.query.get("scope") == "local":
                return json(self, listing.local(offset, limit, overdue))
            page = await listing.everywhere(request, offset, limit, overdue)
            return json(self, {**page, "reviews": [described(review) for review in page["reviews"]]})

    @app.page("/decisions", name="decisions")
    class Decisions(web.View):
        @guarded
        async def get(self, request: web.Request) -> web.Response:
            """The latest decisions, newest first, from every worker."""
            if request.query.get("scope") == "local":
                return json(self, {"decisions": tables.owned_decisions()})
            return json(self, await listing.decided(request))

    @app.page("/reviews/{payout_id}", name="review")
    class Review(web.View):
        @guarded
        @app.table_route(table=tables.pending, match_info="payout_id")  # type: ignore[arg-type]
        async def get(self, request: web.Request, payout_id: str) -> web.Response:
            """One payout: waiting, or the decision applied to it."""
            if not tables.owns(payout_id):  # answer from the owner's data, never from a standby copy
                raise ServiceUnavailable("the payout's partition is moving between workers: try again")
            pending, decided = tables.review(payout_id), tables.decision(payout_id)
            if pending is not None:
                return json(self, {"status": "pending", "review": pending})
            if decided is not None:
                return json(self, {"status": decided_status(decided), "decision": decided})
            return refusal_response(self, Outcome.UNKNOWN, payout_id)

    @app.page("/reviews/{payout_id}/{decision:approve|reject}", name="decide")
    class Decide(web.View):
        @as_reviewer
        async def post(
            self, request: web.Request, payout_id: str, decision: str, reviewer: str
        ) -> web.Response:
            """Approve or reject a held payout, as the token's reviewer, with a reason."""
            body = await request.read()
            try:
                verdict = decode_decision_request(
                    body, payout_id=payout_id, decision=decision, reviewer=reviewer, now=now()
                )
            except InvalidRecord as error:
                message = f"bad request body ({error.reason}): {error.detail}; send {{reason}}"
                return self.json({"error": message}, status=400)
            owner = owner_of(app, tables, payout_id)
            if owner is not None:
                return await forward(app, self, request, owner, body)
            return await decide(self, verdict)

    async def decide(view: web.View, verdict: ReviewDecision) -> web.Response:
        payout_id = verdict.payout_id
        refused = refusal(tables.review(payout_id), tables.decision(payout_id))
        if refused is None and payout_id in deciding:
            refused = Outcome.ALREADY_DECIDED
        if refused is not None:
            return refusal_response(view, refused, payout_id)
        deciding.add(payout_id)
        held = tables.review(payout_id)
        span = trace.child(trace.parse(held.traceparent if held is not None else None))
        try:
            await publisher.send(topics.review_decisions, verdict, key=payout_id, span=span)
            applied = await applied_decision(payout_id)
        finally:
            deciding.discard(payout_id)
        logger.info(
            "review decision posted: payout_id=%s decision=%s reviewer=%s",
            payout_id,
            verdict.decision,
            verdict.reviewer,
        )
        if applied is None:
            return json(view, {"status": "accepted", "decision": verdict}, status=202)
        if applied != verdict:
            return refusal_response(view, Outcome.ALREADY_DECIDED, payout_id)
        return json(view, {"status": decided_status(applied), "decision": applied})

    async def applied_decision(payout_id: str) -> ReviewDecision | None:
        deadline = time.monotonic() + APPLY_WAIT_S
        while (decided := tables.decision(payout_id)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return decided


def refusal_response(view: web.View, refused: Outcome, payout_id: str) -> web.Response:
    """404 for an unknown payout, 409 for one decided already."""
    status, message = _REFUSED[refused]
    return view.json({"error": message.format(payout_id)}, status=status)


def decided_status(decision: ReviewDecision) -> str:
    """`approved` or `rejected`."""
    return "approved" if decision.decision == "approve" else "rejected"


def json(view: web.View, document: Any, status: int = 200) -> web.Response:
    """A JSON response in the pipeline's wire format (money as strings, ISO-8601 UTC times)."""
    return view.bytes(encode(document), content_type="application/json", status=status)


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)
