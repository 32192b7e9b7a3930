"""payouts-approved | payouts-rejected -> the settlement ledger: each payout settles exactly once.

Kafka delivers at least once, so a crash or rebalance can repeat messages on the outcome topics. The
ledger, keyed by the deterministic payout id, turns those repeats into no-ops.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from faust.types import AgentT, EventT, StreamT, TableT

from worker.app import PipelineApp
from worker.codec import decode_payout
from worker.errors import InvalidRecord
from worker.publish import Publisher
from worker.records import Settlement, checked
from worker.rules import Settle, settle
from worker.topics import Topics

logger = logging.getLogger(__name__)


def register(
    app: PipelineApp,
    topics: Topics,
    publisher: Publisher,
    ledger: TableT[str, Settlement],
    seen: Counter[str],
) -> AgentT[Any]:
    """Add the `settlement` agent; `seen` counts outcomes (new, duplicate, conflict) for /stats."""
    states = {
        topics.payouts_approved.get_topic_name(): "approved",
        topics.payouts_rejected.get_topic_name(): "rejected",
    }
    source = app.topic(
        *states, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    @app.agent(source, name="settlement")
    async def settlement(stream: StreamT[bytes]) -> None:
        """Record each payout's final state once; report conflicting repeats."""
        events = stream.noack()  # type: ignore[attr-defined]  # ack after output is confirmed: see publish.py
        async for event in events.events():
            await _settle(event)
            await events.ack(event)

    async def _settle(event: EventT[bytes]) -> None:
        try:
            payout = decode_payout(event.value)
        except InvalidRecord as error:
            await publisher.reject(event, error)
            return
        message = event.message
        state = states[message.topic]
        outcome = settle(ledger.get(payout.payout_id), payout, state)
        seen[outcome.value] += 1
        if outcome is Settle.NEW:
            ledger[payout.payout_id] = checked(
                Settlement,
                payout_id=payout.payout_id,
                seller_id=payout.seller_id,
                state=state,
                net=payout.net,
                currency=payout.currency,
                settled_at=datetime.now(UTC),
                ledger_partition=message.partition,
            )
        elif outcome is Settle.CONFLICT:
            await publisher.reject(
                event,
                InvalidRecord(
                    "conflicting_duplicate",
                    f"payout {payout.payout_id} is already settled differently",
                ),
            )

    return settlement
