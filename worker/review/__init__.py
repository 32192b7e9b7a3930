"""Manual review: a payout above REVIEW_THRESHOLD waits until a person approves or rejects it.

payouts-review ──> review-intake ──> <APP_ID>-held-reviews ──> review-hold ──> pending-reviews table
review-decisions (page, API, CLI or another service) ──> review-decisions ──> payouts-approved | rejected
payouts-approved ──> seller-history table (what a reviewer compares a held payout with)
still pending after REVIEW_SLA ──> payouts-review-escalated, once (a timer)

`records` (the wire contracts), `rules` (hold, decide, escalate, list: pure), `tables`, `stages`,
`escalation` (the SLA timer), `api` with `listing` and `routing` (the HTTP API, any worker answers),
`activity` (the page's chart: orders/s and queue over the last hour), `page` and `static/` (the
reviewer's page), `cli` (`python -m worker reviews|reviewers`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worker.review import activity, api, cli, escalation, page
from worker.review.listing import Listing
from worker.review.stages import decisions, hold, intake, seller_history
from worker.review.tables import ReviewTables, declare_tables
from worker.runtime.auth import requires_token, reviewers_from
from worker.runtime.context import Context

__all__ = ["ReviewTables", "decisions", "hold", "intake", "register", "seller_history"]


def register(ctx: Context) -> ReviewTables:
    """The review tables, the SLA timer, the API, the page, the commands and the feature's numbers."""
    tables = declare_tables(ctx)
    escalation.register(ctx.app, ctx.topics, ctx.publisher, tables, ctx.settings)
    api.register(ctx.app, ctx.topics, ctx.publisher, tables, ctx.settings)
    page.register(ctx.app)
    cli.register(ctx.app, ctx.settings)
    observer = ctx.observer

    def summary() -> dict[str, Any]:
        return tables.summary(datetime.now(UTC))

    orders = ctx.topics.orders.get_topic_name()
    activity.register(
        ctx.app,
        Listing(ctx.app, tables),
        requires_token(reviewers_from(ctx.settings)),
        lambda: observer.consumed[orders],
        lambda: len(tables.owned_pending()),
    )
    observer.section("reviews", summary)
    observer.reading(
        "streamline_pending_reviews", "Payouts waiting for a review", lambda: float(summary()["pending"])
    )
    observer.reading(
        "streamline_review_age_seconds",
        "Age of the oldest payout waiting for review",
        lambda: float(summary()["oldest_pending_age_s"] or 0.0),
    )
    return tables
