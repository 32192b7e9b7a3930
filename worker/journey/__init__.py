"""Journeys: what happened to a payout, from its order to the ledger, found by payout, order or seller.

Nothing on the hot path: the payout carries its order's origin, fee schedule and threshold; the
settlement ledger notes where it read each payout, and indexes it by order id; the review tables
keep the review. A journey is read from them when asked (`facts`), put together by pure rules
(`rules`), and served by any worker (`api`) and `python -m worker payouts show` (`cli`). See
docs/journey.md.
"""

from __future__ import annotations

from worker.journey import api, cli
from worker.journey.facts import Facts
from worker.review.tables import ReviewTables
from worker.runtime.context import Context
from worker.settlement.ledger import Ledger

__all__ = ["register"]


def register(ctx: Context, reviews: ReviewTables, ledger: Ledger) -> None:
    """The journey API and the `payouts` command."""
    api.register(ctx.app, Facts(ctx, reviews, ledger), ctx.settings)
    cli.register(ctx.app, ctx.settings)
