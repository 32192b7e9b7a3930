"""Journeys: what happened to a payout, from its order to the ledger, under its payout id.

payouts, payouts-approved | rejected | review | review-escalated, <app>-held-reviews, the ledger's
changelog ──> journey-intake ──> <app>-journey-feed ──> journey ──> journeys, journey-orders,
journey-sellers tables ──> GET /payouts/{id}, /orders/{id}, /sellers/{id}; `payouts show`

`events` (what each topic says: pure), `rules` (merging, indexes, retention, the view: pure), `tables`,
`stages`, `retention` (the sweep timer), `api`, `cli`. See docs/journey.md.
"""

from __future__ import annotations

from worker.journey import api, cli, retention
from worker.journey.stages import intake, journey
from worker.journey.tables import JourneyTables, declare_tables
from worker.runtime.context import Context

__all__ = ["JourneyTables", "intake", "journey", "register"]


def register(ctx: Context) -> JourneyTables:
    """The journey tables, the retention timer, the API and the `payouts` command."""
    tables = declare_tables(ctx)
    retention.register(ctx.app, tables, ctx.settings)
    api.register(ctx.app, tables, ctx.settings)
    cli.register(ctx.app, ctx.settings)
    return tables
