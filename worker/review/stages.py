"""payouts-review -> a person decides -> payouts-approved | payouts-rejected.

review-intake     payouts-review (keyed by seller) -> <app_id>-held-reviews (keyed by payout id),
                  with the seller's recent payouts attached
review-hold       <app_id>-held-reviews -> the pending-reviews table
review-decisions  review-decisions -> apply the decision -> payouts-approved | payouts-rejected

A payout that arrives again with other content than the one held or decided under its id, and a
decision that differs from the one applied, are dead-lettered as `conflicting_duplicate`; the same
content again changes nothing (counted on /stats, `reviews.holds` and `reviews.decisions`).

seller-history    payouts-approved -> the seller-history table (what a reviewer compares with)

Why the hop through `held-reviews`: see `worker/review/tables.py`.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from datetime import UTC, datetime

from worker.errors import InvalidRecord
from worker.payouts.records import Payout, decode_payout
from worker.reasons import Reason
from worker.review.records import PendingReview, ReviewDecision, decode_decision, decode_state
from worker.review.rules import Hold, Outcome, apply_decision, hold_payout, new_review, with_payouts
from worker.review.tables import ReviewTables
from worker.runtime import trace
from worker.runtime.context import Context
from worker.runtime.outbox import Outbox
from worker.runtime.stage import Stage

logger = logging.getLogger(__name__)


def intake(ctx: Context, tables: ReviewTables) -> Stage[Payout]:
    """The `review-intake` stage: re-key a held payout by its id, with its seller's recent payouts."""

    def handle(payout: Payout, out: Outbox) -> None:
        review = new_review(payout, tables.history(payout.seller_id), datetime.now(UTC), trace.traceparent())
        out.send(tables.held, review, key=payout.payout_id)

    return Stage("review-intake", ctx.topics.payouts_review, decode_payout, handle)


def hold(ctx: Context, tables: ReviewTables) -> Stage[PendingReview]:
    """The `review-hold` stage: keep a held payout in the pending table until a person decides;
    refuse another payout under the same id."""

    def handle(review: PendingReview, out: Outbox) -> None:
        payout = review.payout
        payout_id = payout.payout_id
        held = hold_payout(tables.review(payout_id), tables.decided_review(payout_id), payout)
        tables.holds[held.value] += 1
        if held is Hold.CONFLICT:
            detail = f"payout {payout_id} is already held or decided with other content"
            raise InvalidRecord(Reason.CONFLICTING_DUPLICATE, detail)
        if held is Hold.NEW:
            tables.keep(review)
            logger.info(
                "payout held for review: payout_id=%s seller_id=%s net=%s %s",
                payout_id,
                payout.seller_id,
                payout.net,
                payout.currency,
            )

    return Stage("review-hold", tables.held, functools.partial(decode_state, model=PendingReview), handle)


def decisions(ctx: Context, tables: ReviewTables) -> Stage[ReviewDecision]:
    """The `review-decisions` stage: apply a decision once; the payout leaves the pending table and
    flows on with it."""
    topics = ctx.topics
    destination = {"approve": topics.payouts_approved, "reject": topics.payouts_rejected}

    def handle(decision: ReviewDecision, out: Outbox) -> None:
        source = out.source
        assert source is not None
        if source.partition != tables.partition_of(decision.payout_id):
            # A producer with another partitioner (librdkafka's default is crc32): send it on to the
            # partition whose worker owns the payout, rather than touch a table partition we do not own.
            logger.warning("decision on the wrong partition, forwarded: payout_id=%s", decision.payout_id)
            out.send(topics.review_decisions, source.value or b"", key=decision.payout_id)
            return
        apply(decision, out, origin=f"{source.topic}[{source.partition}]")

    def apply(decision: ReviewDecision, out: Outbox, origin: str) -> None:
        payout_id = decision.payout_id
        applied = apply_decision(tables.review(payout_id), tables.decided_review(payout_id), decision)
        tables.outcomes[applied.outcome.value] += 1
        level = logging.INFO if applied.outcome.applied else logging.WARNING
        logger.log(level, "decision %s: payout_id=%s from %s", applied.outcome.value, payout_id, origin)
        if applied.outcome is Outcome.CONFLICT:
            raise InvalidRecord(
                Reason.CONFLICTING_DUPLICATE, f"payout {payout_id} was decided already, differently"
            )
        payout = applied.payout
        if payout is None:
            return
        if applied.outcome.applied:  # on the broker before the payout moves (tables are flushed first)
            tables.record(payout)
            tables.note_decision(payout)
        verdict = payout.review.decision
        outcome = "approved" if verdict == "approve" else "rejected"
        since = payout.order_created_at
        out.send(destination[verdict], payout, key=payout.seller_id, outcome=outcome, since=since)

    return Stage("review-decisions", topics.review_decisions, decode_decision, handle)


def seller_history(ctx: Context, tables: ReviewTables) -> Stage[Payout]:
    """The `seller-history` stage: each seller's latest approved payouts (keyed by seller, like the topic)."""
    batch: dict[str, list[Payout]] = defaultdict(list)

    def handle(payout: Payout, out: Outbox) -> None:
        batch[payout.seller_id].append(payout)

    def end_batch(out: Outbox) -> None:
        for seller_id, payouts in batch.items():
            tables.remember(seller_id, with_payouts(tables.history(seller_id), payouts))
        batch.clear()

    return Stage("seller-history", ctx.topics.payouts_approved, decode_payout, handle, end_batch=end_batch)
