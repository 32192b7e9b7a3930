"""payouts-review -> a person decides -> payouts-approved | payouts-rejected.

review-intake     payouts-review (keyed by seller) -> <app_id>-held-reviews (keyed by payout id),
                  with the seller's recent payouts attached
review-hold       <app_id>-held-reviews -> the pending-reviews table
review-decisions  review-decisions -> apply the decision -> payouts-approved | payouts-rejected

A payout that arrives again with other content than the one held or decided under its id, and a
decision that differs from the one applied, are dead-lettered as `conflicting_duplicate`; the same
content again changes nothing (counted on /stats, `reviews.holds` and `reviews.decisions`).

Why the hop through `held-reviews`: see `worker/tables.py`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from faust.types import AgentT, EventT, StreamT

from worker.app import PipelineApp
from worker.codec import decode_decision, decode_payout, decode_state
from worker.errors import InvalidRecord
from worker.publish import Publisher
from worker.records import PendingReview, ReviewDecision
from worker.review import Hold, Outcome, apply_decision, hold_payout, new_review
from worker.tables import ReviewTables
from worker.topics import Topics

logger = logging.getLogger(__name__)


def register(
    app: PipelineApp, topics: Topics, publisher: Publisher, tables: ReviewTables
) -> list[AgentT[Any]]:
    """Add the review agents to `app`."""

    @app.agent(topics.payouts_review, name="review-intake")
    async def intake(stream: StreamT[bytes]) -> None:
        """Re-key each held payout by its id, with its seller's recent payouts."""
        async for event in stream.events():
            try:
                payout = decode_payout(event.value)
            except InvalidRecord as error:
                await publisher.reject(event, error)
                continue
            review = new_review(payout, tables.history(payout.seller_id), datetime.now(UTC))
            await publisher.send(tables.held, review, key=payout.payout_id)

    @app.agent(tables.held, name="review-hold")
    async def hold(stream: StreamT[bytes]) -> None:
        """Keep each held payout in the pending table until a person decides."""
        async for event in stream.events():
            try:
                review = decode_state(event.value, PendingReview)
            except InvalidRecord as error:
                await publisher.reject(event, error)
                continue
            await keep(event, review)

    @app.agent(topics.review_decisions, name="review-decisions")
    async def decisions(stream: StreamT[bytes]) -> None:
        """Apply each decision once: the payout leaves the pending table and flows on with it."""
        async for event in stream.events():
            try:
                decision = decode_decision(event.value)
            except InvalidRecord as error:
                await publisher.reject(event, error)
                continue
            if event.message.partition != tables.partition_of(decision.payout_id):
                await misplaced(event, decision)
                continue
            await apply(event, decision)

    async def keep(event: EventT[bytes], review: PendingReview) -> None:
        payout_id = review.payout.payout_id
        held = hold_payout(tables.review(payout_id), tables.decided_review(payout_id), review.payout)
        tables.holds[held.value] += 1
        if held is Hold.NEW:
            tables.keep(review)
            logger.info("payout waiting for review: payout_id=%s", payout_id)
        elif held is Hold.CONFLICT:
            detail = f"payout {payout_id} is already held or decided with other content"
            await publisher.reject(event, InvalidRecord("conflicting_duplicate", detail))

    async def misplaced(event: EventT[bytes], decision: ReviewDecision) -> None:
        # A producer with another partitioner (librdkafka's default is crc32): send it on to the
        # partition whose worker owns the payout, rather than touch a table partition we do not own.
        logger.warning("decision on the wrong partition, forwarded: payout_id=%s", decision.payout_id)
        await publisher.send(topics.review_decisions, event.value, key=decision.payout_id)

    async def apply(event: EventT[bytes], decision: ReviewDecision) -> None:
        payout_id, origin = decision.payout_id, f"{event.message.topic}[{event.message.partition}]"
        applied = apply_decision(tables.review(payout_id), tables.decision(payout_id), decision)
        tables.outcomes[applied.outcome.value] += 1
        level = logging.INFO if applied.outcome.applied else logging.WARNING
        logger.log(level, "decision %s: payout_id=%s from %s", applied.outcome.value, payout_id, origin)
        if applied.outcome is Outcome.CONFLICT:
            detail = f"payout {payout_id} was decided already, differently"
            await publisher.reject(event, InvalidRecord("conflicting_duplicate", detail))
        if applied.payout is None:
            return
        tables.record(applied.payout)
        # The record is on the broker before the payout moves: a redelivered decision finds it.
        await app.producer.flush()
        destination = (
            topics.payouts_approved if applied.outcome is Outcome.APPROVED else topics.payouts_rejected
        )
        await publisher.send(destination, applied.payout, key=applied.payout.seller_id)

    return [intake, hold, decisions]
