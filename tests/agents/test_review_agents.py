"""The review stages, run as the runtime runs them but with no broker: records in, an Outbox out
(the paths that need no table write)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from tests.stages import record, run
from worker import review
from worker.review.tables import ReviewTables, declare_tables
from worker.runtime import context
from worker.runtime.context import Context
from worker.settings import Settings

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


@pytest.fixture
def ctx(make_settings: Callable[..., Settings]) -> Context:
    return context.context(make_settings().with_embedded_broker("127.0.0.1:1"))


@pytest.fixture
def tables(ctx: Context) -> ReviewTables:
    return declare_tables(ctx)


def test_a_held_payout_is_rekeyed_by_its_id_with_its_seller_history(ctx, tables) -> None:
    [message] = run(review.intake(ctx, tables), record(orjson.dumps(PAYOUT), topic="payouts-review")).messages

    held = orjson.loads(message.value)
    assert (message.topic, message.key) == (tables.held, b"po-7")
    assert {name: value for name, value in held["payout"].items() if value is not None} == PAYOUT
    assert held["history"] == [] and held["escalated_at"] is None
    assert datetime.fromisoformat(held["held_at"]) <= datetime.now(UTC)


def test_a_bad_held_payout_becomes_a_dead_letter(ctx, tables) -> None:
    outbox = run(review.intake(ctx, tables), record(b'{"payout_id": "po-7"}'))
    [(_, error, _)] = outbox.rejected
    assert error.reason == "missing_field" and not outbox.messages


def test_a_bad_decision_becomes_a_dead_letter(ctx, tables) -> None:
    bad = record(orjson.dumps({**DECISION, "decision": "perhaps"}), key=b"po-7")
    [(_, error, _)] = run(review.decisions(ctx, tables), bad).rejected
    assert error.reason == "unknown_decision"


def test_a_decision_on_the_wrong_partition_goes_to_the_right_one(ctx, tables) -> None:
    wrong = (tables.partition_of("po-7") + 1) % tables.partitions
    decision = record(orjson.dumps(DECISION), key=b"po-7", partition=wrong)

    [message] = run(review.decisions(ctx, tables), decision).messages

    assert (message.topic, message.key, orjson.loads(message.value)) == (
        ctx.topics.review_decisions,
        b"po-7",
        DECISION,
    )
    assert sum(tables.outcomes.values()) == 0  # nothing applied where it does not belong


def test_a_decision_for_an_unknown_payout_changes_nothing(ctx, tables) -> None:
    right = tables.partition_of("po-7")
    outbox = run(review.decisions(ctx, tables), record(orjson.dumps(DECISION), key=b"po-7", partition=right))
    assert tables.outcomes == {"unknown": 1}
    assert not outbox
