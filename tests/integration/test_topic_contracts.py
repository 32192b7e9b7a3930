"""Every record the running pipeline writes validates against its topic's committed schema.

One pipeline gets good orders, payouts held and decided through the review API (one approved, one
rejected), one left past a short REVIEW_SLA (escalated) and the bad-input catalogue (dead letters);
then every pipeline topic is read to its end and each record checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from tests.contracts import assert_valid, topic_of
from tests.integration.test_bad_input import CATALOGUE
from tests.integration.test_pipeline import order
from tests.kafka import produce, read_to_end, read_until
from tests.reviews import SHARED, decide, hold, web_port
from worker.contracts.flow import TOPICS
from worker.errors import InvalidRecord
from worker.payouts.records import decode_order

#: The bad input that fits a default request (the largest oversized order does not).
BAD = [(key, value) for _, key, value in CATALOGUE if value is None or len(value) < 500_000]


async def test_every_record_the_pipeline_writes_follows_its_topics_schema(bootstrap, start_pipeline):
    pipeline = await start_pipeline(
        **SHARED, review_threshold=Decimal("500.00"), review_sla=timedelta(seconds=2)
    )
    topics, port = pipeline.topics, web_port(pipeline)
    prefix = pipeline.app.settings.topic_prefix
    good = [(f"s-{n}".encode(), order(f"o-{n}", f"{n + 10}.50", seller=f"s-{n}")) for n in range(6)]
    await produce(bootstrap, topics.orders.get_topic_name(), good + BAD)
    approved, rejected, overdue = await hold(bootstrap, pipeline, ["o-yes", "o-no", "o-late"])
    assert (await decide(port, approved, "approve"))[0] == 200
    assert (await decide(port, rejected, "reject", reason="not this one"))[0] == 200

    await read_until(bootstrap, topics.payouts_review_escalated.get_topic_name(), bool)
    await read_until(bootstrap, topics.payouts_rejected.get_topic_name(), bool)
    approvals = await read_until(
        bootstrap, topics.payouts_approved.get_topic_name(), lambda v: any("review" in p for p in v)
    )
    await read_until(bootstrap, topics.dead_letters.get_topic_name(), lambda v: len(v) >= len(BAD))

    declared = {topic_of(topic.get_topic_name(), prefix) for topic in topics.all()}
    assert declared == {t.name for t in TOPICS}, "a pipeline topic without a contract, or the reverse"
    for topic in TOPICS:
        records = await _written(bootstrap, f"{prefix}{topic.name}", topic.name)
        assert records, f"nothing on {topic.name}: the test proves nothing about it"
        assert_valid(topic.name, records)
    assert overdue and len(approvals) >= len(good)


async def _written(bootstrap: str, name: str, topic: str) -> list[Any]:
    """The records on a topic; on `orders` (where the test writes garbage too), those the codec takes."""
    if topic != "orders":
        return await read_to_end(bootstrap, name)
    raw = await read_until(bootstrap, name, lambda v: len(v) >= 9 + len(BAD), decode=None)
    return [orjson.loads(value) for value in raw if _an_order(value)]


def _an_order(raw: bytes | None) -> bool:
    try:
        decode_order(raw, currencies=("EUR",), now=datetime.now(UTC))
    except InvalidRecord:
        return False
    return True
