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

import functools
import logging
from datetime import UTC, datetime
from typing import Any

from worker.codec import decode_decision, decode_payout, decode_state
from worker.errors import InvalidRecord
from worker.outbox import Outbox
from worker.records import Payout, PendingReview, ReviewDecision
from worker.review import Hold, Outcome, apply_decision, hold_payout, new_review
from worker.runtime.stage import Stage
from worker.tables import ReviewTables
from worker.topics import Topics

logger = logging.getLogger(__name__)


def stages(topics: Topics, tables: ReviewTables) -> list[Stage[Any]]:
    """The review stages."""

    def intake(payout: Payout, out: Outbox) -> None:
        """Re-key a held payout by its id, with its seller's recent payouts."""
        review = new_review(payout, tables.history(payout.seller_id), datetime.now(UTC))
        out.send(tables.held, review, key=payout.payout_id)

    def hold(review: PendingReview, out: Outbox) -> None:
        """Keep a held payout in the pending table until a person decides; refuse another payout
        under the same id."""
        payout_id = review.payout.payout_id
        held = hold_payout(tables.review(payout_id), tables.decided_review(payout_id), review.payout)
        tables.holds[held.value] += 1
        if held is Hold.CONFLICT:
            detail = f"payout {payout_id} is already held or decided with other content"
            raise InvalidRecord("conflicting_duplicate", detail)
        if held is Hold.NEW:
            tables.keep(review)
            payout = review.payout
            logger.info(
                "payout held for review: payout_id=%s seller_id=%s net=%s %s",
                payout_id,
                payout.seller_id,
                payout.net,
                payout.currency,
            )

    def decide(decision: ReviewDecision, out: Outbox) -> None:
        """Apply a decision once: the payout leaves the pending table and flows on with it."""
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
                "conflicting_duplicate", f"payout {payout_id} was decided already, differently"
            )
        if applied.payout is None:
            return
        if applied.outcome.applied:  # on the broker before the payout moves (tables are flushed first)
            tables.record(applied.payout)
        approved = applied.payout.review.decision == "approve"
        destination = topics.payouts_approved if approved else topics.payouts_rejected
        out.send(destination, applied.payout, key=applied.payout.seller_id)

    return [
        Stage("review-intake", topics.payouts_review, decode_payout, intake),
        Stage("review-hold", tables.held, functools.partial(decode_state, model=PendingReview), hold),
        Stage("review-decisions", topics.review_decisions, decode_decision, decide),
    ]
