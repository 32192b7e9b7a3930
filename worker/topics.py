"""Every topic of the pipeline, in flow order.

All of them carry raw bytes: the stages decode and encode with `worker.codec`, so that a bad message
becomes a dead letter with its reason instead of an exception inside Faust. Keys are the seller id,
so one seller's events stay in order on one partition; `review-decisions` is keyed by payout id, like
the review tables it feeds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from faust.types import TopicT

from worker.app import PipelineApp
from worker.settings import Settings


@dataclass(frozen=True)
class Topics:
    """The pipeline's topics, in the order events flow through them."""

    orders: TopicT
    payouts: TopicT
    payouts_approved: TopicT
    payouts_review: TopicT
    payouts_review_escalated: TopicT
    review_decisions: TopicT
    payouts_rejected: TopicT
    dead_letters: TopicT

    def all(self) -> tuple[TopicT, ...]:
        """Every topic, in flow order."""
        return tuple(getattr(self, field.name) for field in fields(self))


def declare_topics(app: PipelineApp, settings: Settings) -> Topics:
    """Declare the pipeline's topics on `app`; the app creates them before its web server answers."""

    def topic(name: str) -> TopicT:
        return app.topic(
            settings.topic_name(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )

    topics = Topics(
        orders=topic("orders"),
        payouts=topic("payouts"),
        payouts_approved=topic("payouts-approved"),
        payouts_review=topic("payouts-review"),
        payouts_review_escalated=topic("payouts-review-escalated"),
        review_decisions=topic("review-decisions"),  # keyed by payout_id: see worker/tables.py
        payouts_rejected=topic("payouts-rejected"),
        dead_letters=topic("dead-letters"),
    )
    app.create_on_start(topics.all())
    return topics
