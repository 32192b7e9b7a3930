"""Payouts: orders from the shop become sellers' payouts, net of the marketplace fee, and are screened.

orders ──> orders-to-payouts ──> payouts ──> screening ─┬─> payouts-approved   (net ≤ REVIEW_THRESHOLD)
                                                        └─> payouts-review     (a person decides)

`records` (the wire contracts), `rules` (fees, payout ids, screening: pure), `stages` (the two batch
stages), `storefront` (the simulated shop, a timer).
"""

from __future__ import annotations

from worker.payouts import storefront
from worker.payouts.stages import orders_to_payouts, screening
from worker.runtime.context import Context

__all__ = ["orders_to_payouts", "register", "screening"]


def register(ctx: Context) -> None:
    """The simulated shop, and the feature's numbers on `/metrics`."""
    storefront.register(ctx)
    observer, orders = ctx.observer, ctx.topics.orders.get_topic_name()
    observer.reading(
        "streamline_orders", "Orders taken by the pipeline", lambda: observer.consumed[orders], kind="counter"
    )
    observer.reading(
        "streamline_payouts",
        "Payouts delivered to a final topic, by outcome",
        lambda: {(outcome,): observer.outcomes[outcome] for outcome in ("approved", "review", "rejected")},
        kind="counter",
        labels=("outcome",),
    )
