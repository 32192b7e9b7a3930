"""The hot stages' handlers, fed records as the batch consumer would: no broker, outputs in an Outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord

from worker.app import create_app
from worker.flow import orders_to_payouts, screening
from worker.publish import Origin, Outbox, Publisher, dead_letter_for
from worker.runtime.engine import start_stage
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.stage import ErrorPolicy, Runner, Stage
from worker.settings import Settings
from worker.topics import Topics, declare_topics

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORDER = {
    "order_id": "o-1",
    "seller_id": "s-9",
    "customer_id": "c-3",
    "amount": "120.00",
    "currency": "EUR",
    "created_at": "2026-11-28T10:00:00Z",
}


def record(value: bytes, key: bytes | None = b"s-9", offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="orders",
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=(),
    )


@pytest.fixture
def wiring(make_settings: Callable[..., Settings]) -> tuple[Settings, Any, Topics, Publisher]:
    settings = make_settings(review_threshold=Decimal("100.00"))
    app = create_app(settings.with_embedded_broker("127.0.0.1:1"))
    topics = declare_topics(app, settings)
    return settings, app, topics, Publisher(topics.dead_letters)


def run(stage: Stage[Any], *records: ConsumerRecord[bytes, bytes]) -> Outbox:
    """Run `stage` on `records` as the runtime does: every rule of every stage, no broker."""
    outbox, runner = Outbox(), Runner(stage, ErrorPolicy.DEAD_LETTER, Observer(), str)
    for consumed in records:
        assert runner.run(consumed, outbox) is None
    runner.end_batch(outbox)
    return outbox


def test_an_order_becomes_a_payout_keyed_by_seller(wiring) -> None:
    settings, _, topics, _ = wiring
    agent = orders_to_payouts.stage(topics, settings)

    [(topic, key, value)] = run(agent, record(orjson.dumps(ORDER), key=b"whatever")).messages

    payout = orjson.loads(value)
    assert (topic, key) == (topics.payouts, b"s-9")
    assert (payout["gross"], payout["fee"], payout["net"]) == ("120.00", "3.78", "116.22")


def test_a_bad_order_becomes_a_dead_letter_and_the_next_one_flows(wiring) -> None:
    settings, _, topics, _ = wiring
    agent = orders_to_payouts.stage(topics, settings)
    bad = record(b'{"order_id": 1}', key=b"k", offset=7)

    outbox = run(agent, bad, record(orjson.dumps(ORDER), offset=8))

    [(message, error)] = outbox.rejected
    letter = dead_letter_for(Origin.of_message(message), error, key=bad.key, value=bad.value, now=NOW)
    assert (message, error.reason) == (bad, "wrong_type")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("orders", 2, 7)
    assert (letter.payload_base64, letter.key_base64) == ("eyJvcmRlcl9pZCI6IDF9", "aw==")
    [(_, _, payout)] = outbox.messages
    assert orjson.loads(payout)["order_id"] == "o-1"


@pytest.mark.parametrize(("amount", "route"), [("50.00", "payouts_approved"), ("500.00", "payouts_review")])
def test_screening_routes_by_the_threshold(wiring, amount: str, route: str) -> None:
    settings, _, topics, _ = wiring
    to_payouts = orders_to_payouts.stage(topics, settings)
    agent = screening.stage(topics, settings)

    [(_, key, payout)] = run(to_payouts, record(orjson.dumps({**ORDER, "amount": amount}))).messages
    [(topic, key, routed)] = run(agent, record(payout, key=key)).messages

    assert topic is getattr(topics, route)
    assert (key, orjson.loads(routed)["gross"]) == (b"s-9", amount)


def test_each_hot_stage_runs_with_the_agents_in_its_own_group(wiring) -> None:
    settings, app, topics, publisher = wiring
    stages = [orders_to_payouts.stage(topics, settings), screening.stage(topics, settings)]
    rules: dict[str, Any] = {"policy": ErrorPolicy.DEAD_LETTER, "observer": Observer(), "halts": Halts()}
    agents = [start_stage(app, stage, publisher=publisher, **rules) for stage in stages]

    assert app.stage_services == agents
    assert [a.channel for a in agents] == [topics.orders, topics.payouts]
