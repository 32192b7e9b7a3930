"""pending-reviews -> payouts-review-escalated: a payout waiting longer than REVIEW_SLA, announced once.

A timer on every worker looks at the pending reviews that worker owns. It marks a review escalated in
the table (kept in the changelog, so a restarted worker knows) before it announces it.

Announcing once per payout id collapses nothing by mistake: review-hold never lets another payout
take the id of a pending review (a changed repeat is a `conflicting_duplicate`), and a repeat of the
same payout leaves the review, and its escalation mark, as they are (`worker.review.hold_payout`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from worker.review.records import PendingReview, ReviewEscalation
from worker.review.rules import escalated, escalation_due
from worker.review.tables import ReviewTables
from worker.runtime import trace
from worker.runtime.app import PipelineApp
from worker.runtime.publish import Publisher
from worker.runtime.topics import Topics
from worker.settings import Settings

logger = logging.getLogger(__name__)


def check_interval(settings: Settings) -> float:
    """How often to look for overdue reviews: a tenth of the SLA, between 0.5 s and a minute."""
    return min(60.0, max(0.5, settings.review_sla.total_seconds() / 10))


def register(
    app: PipelineApp, topics: Topics, publisher: Publisher, tables: ReviewTables, settings: Settings
) -> None:
    """Add the review SLA timer to `app`."""
    sla, escalations = settings.review_sla, topics.payouts_review_escalated

    @app.timer(check_interval(settings), name="review-escalation")
    async def escalate() -> None:
        if app.rebalancing:  # tables may be half recovered: an old copy would escalate again
            return
        for stale in tables.owned_pending():
            now = datetime.now(UTC)
            review = tables.review(stale.payout.payout_id)  # re-read: a decision may have come meanwhile
            if review is not None and escalation_due(review, now, sla):
                tables.keep(escalated(review, now))
                await app.producer.flush()  # marked on the broker first: announced at most once
                await announce(review, now)

    async def announce(review: PendingReview, now: datetime) -> None:
        payout = review.payout
        logger.warning("review overdue, escalated: payout_id=%s held_at=%s", payout.payout_id, review.held_at)
        escalation = ReviewEscalation(
            payout=payout, held_at=review.held_at, escalated_at=now, sla_seconds=sla.total_seconds()
        )
        span = trace.child(trace.parse(review.traceparent))  # a hop of the held payout's trace
        await publisher.send(escalations, escalation, key=payout.seller_id, span=span)
