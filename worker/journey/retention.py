"""Retention: a journey, and an order's or seller's index entry, is kept JOURNEY_RETENTION after its
last step; a timer on each worker removes the older entries it owns, every JOURNEY_SWEEP_EVERY.

A removal is a tombstone in the table's changelog (compacted, as Faust creates changelogs), so a
restarted worker does not recover it. A step that arrives after its journey was removed starts a
new, partial one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from worker.journey.rules import expired
from worker.journey.tables import NAMES, JourneyTables
from worker.runtime.app import PipelineApp
from worker.settings import Settings

logger = logging.getLogger(__name__)
#: Entries looked at between two yields to the event loop.
CHUNK = 1000


def register(app: PipelineApp, tables: JourneyTables, settings: Settings) -> None:
    """Add the retention timer to `app`."""
    retention = settings.journey_retention

    @app.timer(settings.journey_sweep_every.total_seconds(), name="journey-retention")
    async def sweep() -> None:
        if app.rebalancing:  # tables may be half recovered
            return
        now, removed = datetime.now(UTC), 0
        for table in NAMES:
            for seen, (key, entry) in enumerate(tables.owned(table), start=1):
                if expired(entry, now, retention):
                    tables.remove(table, key)
                    removed += 1
                if seen % CHUNK == 0:
                    await asyncio.sleep(0)  # a large table must not hold the worker up
        if removed:
            logger.info("journey retention: removed=%d entries older than %s", removed, retention)
