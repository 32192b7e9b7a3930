"""The pipeline's tables: keyed state, backed by changelog topics so it survives restarts and moves
with its partitions.

Faust writes a table entry to the changelog partition of the event being processed, so a table keyed
by payout id stays consistent as long as every event about one payout arrives on one partition: the
pipeline keys all its topics by seller id, and a payout belongs to one seller.
"""

from __future__ import annotations

from faust.types import TableT

from worker.app import PipelineApp
from worker.records import Settlement
from worker.settings import Settings


def settlement_ledger(app: PipelineApp, settings: Settings) -> TableT[str, Settlement]:
    """payout_id -> Settlement: each payout's one final state."""
    return app.Table(
        "settlement-ledger",
        key_type=str,
        value_type=Settlement,
        partitions=settings.topic_partitions,
        help="Final state of every payout, written once.",
    )
