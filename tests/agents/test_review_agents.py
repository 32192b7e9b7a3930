"""The review agents with Faust's `test_context()`: the paths that need no table write or broker."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from worker.app import create_app
from worker.flow import review
from worker.publish import Publisher
from worker.runtime.engine import start_stage
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.stage import ErrorPolicy
from worker.settings import Settings
from worker.tables import ReviewTables, declare_tables
from worker.topics import declare_topics

PAYOUT = {
    "payout_id": "po-7",
    "order_id": "o-7",
    "seller_id": "s-9",
    "gross": "2000.00",
    "fee": "58.30",
    "net": "1941.70",
    "currency": "EUR",
    "created_at": "2026-11-28T10:00:00Z",
    "order_created_at": "2026-11-28T09:59:00Z",
}
DECISION = {
    "payout_id": "po-7",
    "decision": "approve",
    "reviewer": "alice",
    "reason": "known seller",
    "decided_at": "2026-11-28T11:00:00Z",
}


@dataclasses.dataclass
class Wiring:
    agents: dict[str, Any]
    tables: ReviewTables
    read: dict[str, Any]


@pytest.fixture
def wiring(make_settings: Callable[..., Settings]) -> Wiring:
    """Review agents whose outputs are in-memory channels, with a reader on each."""
    settings = make_settings()
    app = create_app(settings.with_embedded_broker("127.0.0.1:1"))
    names = ("payouts_approved", "payouts_rejected", "review_decisions", "dead_letters")
    outputs = {name: app.channel() for name in (*names, "held")}
    read = {name: channel.clone(is_iterator=True) for name, channel in outputs.items()}
    topics = dataclasses.replace(declare_topics(app, settings), **{n: outputs[n] for n in names})
    tables = dataclasses.replace(declare_tables(app, settings), held=outputs["held"])
    publisher = Publisher(outputs["dead_letters"])
    rules: dict[str, Any] = {"policy": ErrorPolicy.DEAD_LETTER, "observer": Observer(), "halts": Halts()}
    agents = [start_stage(app, s, publisher=publisher, **rules) for s in review.stages(topics, tables)]
    return Wiring({agent.name: agent for agent in agents}, tables, read)


async def next_value(channel: Any) -> tuple[bytes, dict[str, Any]]:
    event = await channel.get(timeout=5)
    return event.key, orjson.loads(event.value)


async def test_a_held_payout_is_rekeyed_by_its_id_with_its_seller_history(wiring: Wiring) -> None:
    async with wiring.agents["review-intake"].test_context() as context:
        await context.put(key=b"s-9", value=orjson.dumps(PAYOUT))
        key, held = await next_value(wiring.read["held"])

    assert key == b"po-7"
    assert held["payout"] == PAYOUT
    assert held["history"] == [] and held["escalated_at"] is None
    assert datetime.fromisoformat(held["held_at"]) <= datetime.now(UTC)


async def test_a_bad_held_payout_becomes_a_dead_letter(wiring: Wiring) -> None:
    async with wiring.agents["review-intake"].test_context() as context:
        await context.put(key=b"s-9", value=b'{"payout_id": "po-7"}')
        _, letter = await next_value(wiring.read["dead_letters"])
    assert letter["reason"] == "missing_field"


async def test_a_bad_decision_becomes_a_dead_letter(wiring: Wiring) -> None:
    async with wiring.agents["review-decisions"].test_context() as context:
        await context.put(key=b"po-7", value=orjson.dumps({**DECISION, "decision": "perhaps"}))
        _, letter = await next_value(wiring.read["dead_letters"])
    assert letter["reason"] == "unknown_decision"


async def test_a_decision_on_the_wrong_partition_goes_to_the_right_one(wiring: Wiring) -> None:
    wrong = (wiring.tables.partition_of("po-7") + 1) % wiring.tables.partitions
    async with wiring.agents["review-decisions"].test_context() as context:
        await context.put(key=b"po-7", value=orjson.dumps(DECISION), partition=wrong)
        key, forwarded = await next_value(wiring.read["review_decisions"])
    assert (key, forwarded) == (b"po-7", DECISION)
    assert sum(wiring.tables.outcomes.values()) == 0  # nothing applied where it does not belong


async def test_a_decision_for_an_unknown_payout_changes_nothing(wiring: Wiring) -> None:
    right = wiring.tables.partition_of("po-7")
    async with wiring.agents["review-decisions"].test_context() as context:
        await context.put(key=b"po-7", value=orjson.dumps(DECISION), partition=right)
    assert wiring.tables.outcomes == {"unknown": 1}
    assert wiring.read["payouts_approved"].empty()
