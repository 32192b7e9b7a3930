"""payouts-approved | payouts-rejected -> the settlement ledger: each payout settles exactly once.

Kafka delivers at least once, so a crash or rebalance can repeat messages on the outcome topics. The
ledger, keyed by the deterministic payout id, turns those repeats into no-ops.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from faust.types import TableT

from worker.app import PipelineApp
from worker.codec import decode_payout
from worker.errors import InvalidRecord
from worker.outbox import Outbox
from worker.records import Payout, Settlement, checked
from worker.rules import Settle, settle
from worker.runtime.stage import Stage
from worker.topics import Topics


def stage(
    app: PipelineApp, topics: Topics, ledger: TableT[str, Settlement], seen: Counter[str]
) -> Stage[Payout]:
    """The `settlement` stage; `seen` counts outcomes (new, duplicate, conflict) for /stats."""
    states = {
        topics.payouts_approved.get_topic_name(): "approved",
        topics.payouts_rejected.get_topic_name(): "rejected",
    }
    source = app.topic(
        *states, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    def handle(payout: Payout, out: Outbox) -> None:
        """Record the payout's final state once; refuse a conflicting repeat."""
        assert out.source is not None
        state = states[out.source.topic]
        outcome = settle(ledger.get(payout.payout_id), payout, state)
        seen[outcome.value] += 1
        if outcome is Settle.CONFLICT:
            detail = f"payout {payout.payout_id} is already settled differently"
            raise InvalidRecord("conflicting_duplicate", detail)
        if outcome is Settle.NEW:
            ledger[payout.payout_id] = checked(
                Settlement,
                payout_id=payout.payout_id,
                seller_id=payout.seller_id,
                state=state,
                net=payout.net,
                currency=payout.currency,
                settled_at=datetime.now(UTC),
                ledger_partition=out.source.partition,
            )

    return Stage("settlement", source, decode_payout, handle)
