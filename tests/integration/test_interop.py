"""Other languages join the pipeline: librdkafka (confluent-kafka, and Debian's kcat on librdkafka 2.0)
writes orders and reads payouts."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from tests.brokers import broken_on
from tests.integration.test_pipeline import order


def librdkafka_produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0


def librdkafka_read_one(bootstrap: str, topic: str, group: str, timeout: float = 30) -> bytes:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,  # Tansu holds a join for about half of it
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                return bytes(message.value())
        raise AssertionError(f"nothing on {topic} within {timeout}s")
    finally:
        consumer.close()


async def test_a_librdkafka_client_writes_orders_and_reads_payouts(bootstrap, start_pipeline, unique):
    pipeline = await start_pipeline()
    topics = pipeline.topics
    order = (
        b'{"order_id": "o-rd", "seller_id": "s-2", "customer_id": "c-1", "amount": "1234.50",'
        b' "currency": "GBP", "created_at": "2026-11-28T10:00:00Z", "channel": "app"}'
    )

    await asyncio.to_thread(librdkafka_produce, bootstrap, topics.orders.get_topic_name(), b"s-2", order)
    raw = await asyncio.to_thread(
        librdkafka_read_one, bootstrap, topics.payouts_review.get_topic_name(), f"{unique}-reader"
    )

    payout = orjson.loads(raw)
    assert (payout["gross"], payout["fee"], payout["net"]) == ("1234.50", "36.10", "1198.40")
    assert all(isinstance(payout[k], str) for k in ("gross", "fee", "net"))


KCAT = shutil.which("kcat")


@pytest.mark.skipif(KCAT is None, reason="no kcat on PATH (Debian: apt-get install kcat; .ci/run does)")
@broken_on("tansu", "kcat cannot read its ApiVersions answer", "test_debians_kcat_lists_the_brokers_metadata")
async def test_debians_kcat_writes_orders_and_reads_payouts(bootstrap, start_pipeline, unique):
    topics = (await start_pipeline()).topics
    orders, approved = topics.orders.get_topic_name(), topics.payouts_approved.get_topic_name()

    await asyncio.to_thread(kcat, bootstrap, "-P", "-t", orders, "-k", "s-3", stdin=order("o-kc", "100.00"))
    reader = ("-C", "-X", "auto.offset.reset=earliest", "-c", "1", "-G", f"{unique}-kcat", approved)
    payout = orjson.loads(await asyncio.to_thread(kcat, bootstrap, *reader))

    assert (payout["order_id"], payout["fee"], payout["net"]) == ("o-kc", "3.20", "96.80")


def kcat(bootstrap: str, *args: str, stdin: bytes = b"") -> bytes:
    """Run Debian's kcat (librdkafka 2.0) against `bootstrap`; its stdout."""
    assert KCAT is not None
    command = [KCAT, "-b", bootstrap, "-q", *args]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=60, check=True).stdout
