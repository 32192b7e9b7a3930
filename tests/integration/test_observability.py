"""What operators see: /metrics in Prometheus format, /healthz, and /readyz flipping on a stalled agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
from faust.types import TP, StreamT
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_pipeline import order
from tests.kafka import produce, read_until
from worker.main import build


async def fetch(port: int, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.read()


async def poll(port: int, path: str, ready: Callable[[int, Any], bool], timeout: float = 30) -> Any:
    """GET `path` until `ready(status, json)`; fail after `timeout` seconds."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status, body = await fetch(port, path)
        last = (status, orjson.loads(body))
        if ready(*last):
            return last[1]
        await asyncio.sleep(0.25)
    raise AssertionError(f"{path} not as expected within {timeout}s: {last}")


async def poll_metric(port: int, key: tuple[str, tuple[tuple[str, str], ...]], want: float) -> float | None:
    """Scrape /metrics until sample `key` reaches `want` (or 30 s pass); its last value."""
    deadline, value = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        value = samples((await fetch(port, "/metrics"))[1].decode()).get(key)
        if value == want:
            break
        await asyncio.sleep(0.25)
    return value


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def test_metrics_expose_faust_and_the_domain_in_prometheus_format(bootstrap, start_pipeline):
    pipeline = await start_pipeline(review_threshold=Decimal("500.00"))
    topics, port = pipeline.topics, pipeline.app.conf.web_port
    orders = topics.orders.get_topic_name()
    good = [(b"s-1", order(f"o-{n}", "10.00")) for n in range(4)] + [(b"s-2", order("o-big", "600.00"))]
    await produce(bootstrap, orders, [*good, (b"s-3", b"{"), (b"s-3", b"")])
    await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 4)
    await read_until(bootstrap, topics.dead_letters.get_topic_name(), lambda v: len(v) >= 2)

    status, body = await fetch(port, "/metrics")
    found = samples(body.decode())

    assert status == 200
    assert found[("streamline_orders_total", ())] == 7
    assert found[("streamline_payouts_total", (("outcome", "approved"),))] == 4
    assert found[("streamline_payouts_total", (("outcome", "review"),))] == 1
    assert found[("streamline_dead_letters_total", (("reason", "invalid_json"),))] == 1
    assert found[("streamline_dead_letters_total", (("reason", "empty_value"),))] == 1
    latency = ("streamline_order_to_outcome_seconds_count", (("outcome", "approved"),))
    assert found[latency] == 4  # the orders say 2026-11-28T10:00:00Z: old, but counted
    # Faust's own sensor sees what Faust agents consume (the hot topics run as batch agents).
    approved = topics.payouts_approved.get_topic_name()
    received = await poll_metric(port, ("faust_messages_received_per_topic_total", (("topic", approved),)), 4)
    assert received == 4
    assert await poll_metric(port, ("streamline_pending_reviews", ()), 1) == 1  # o-big waits
    assert found[("streamline_stage_messages_total", (("stage", "orders-to-payouts"),))] == 7
    # Its batches: at least one, at most one per message (messages / batches is its batch size).
    assert 1 <= found[("streamline_stage_batches_total", (("stage", "orders-to-payouts"),))] <= 7
    found = samples((await fetch(port, "/metrics"))[1].decode())
    for partition in range(3):
        assert ("streamline_consumer_lag", (("partition", str(partition)), ("topic", approved))) in found


async def test_metrics_take_the_review_features_numbers(bootstrap, start_pipeline):
    pipeline = await start_pipeline(review_threshold=Decimal("500.00"))
    orders = pipeline.topics.orders.get_topic_name()
    await produce(bootstrap, orders, [(b"s-1", order(f"o-{n}", "600.00")) for n in range(3)])

    found = await poll_metric(pipeline.app.conf.web_port, ("streamline_pending_reviews", ()), 3)

    assert found == 3
    _, body = await fetch(pipeline.app.conf.web_port, "/metrics")
    assert samples(body.decode())[("streamline_review_age_seconds", ())] >= 0


async def test_readiness_fails_while_an_agent_is_stuck_with_lag_and_recovers(bootstrap, pipeline_settings):
    pipeline = build(pipeline_settings(stall_timeout_s=2))
    app, port = pipeline.app, pipeline.app.conf.web_port
    stuck_topic = app.topic(f"{app.conf.id}-chores", value_serializer="raw", partitions=1)
    app.create_on_start([stuck_topic])
    release = asyncio.Event()

    @app.agent(stuck_topic, name="chores")
    async def chores(stream: StreamT[bytes]) -> None:
        async for _chore in stream:
            await release.wait()  # a hung call: the agent stops, the process does not

    await app.start()
    try:
        ready = await poll(port, "/readyz", lambda status, body: status == 200)
        assert ready["assigned"] and ready["recovered"] and not ready["stalled"]

        await produce(bootstrap, stuck_topic.get_topic_name(), [(None, b"1"), (None, b"2"), (None, b"3")])
        stalled = await poll(port, "/readyz", lambda status, body: status == 503)

        chores_topic = stuck_topic.get_topic_name()
        assert stalled["stalled"] == [f"chores {chores_topic}[0]"]
        assert stalled["agents"]["chores"]["lag"] == 3
        assert stalled["agents"]["settlement"]["lag"] == 0
        assert (await fetch(port, "/healthz"))[0] == 200  # the process answers: only readiness fails
        _, stats = await fetch(port, "/stats")
        assert orjson.loads(stats)["readiness"]["ready"] is False

        release.set()
        ready = await poll(port, "/readyz", lambda status, body: status == 200)
        assert ready["agents"]["chores"]["lag"] == 0
    finally:
        await app.stop()


async def test_readiness_fails_when_the_consumer_stops_fetching_a_partition(bootstrap, pipeline_settings):
    # Faust's best-known failure: partitions left paused, so nothing arrives and nothing complains.
    pipeline = build(pipeline_settings(stall_timeout_s=2))
    app, port = pipeline.app, pipeline.app.conf.web_port
    topic = app.topic(f"{app.conf.id}-chores", value_serializer="raw", partitions=1)
    app.create_on_start([topic])
    done: list[bytes] = []

    @app.agent(topic, name="chores")
    async def chores(stream: StreamT[bytes]) -> None:
        async for chore in stream:
            done.append(chore)

    await app.start()
    try:
        await poll(port, "/readyz", lambda status, body: status == 200)
        await produce(bootstrap, topic.get_topic_name(), [(None, b"1")])
        await poll(port, "/readyz", lambda status, body: status == 200 and done == [b"1"])

        app.consumer.pause_partitions({TP(topic.get_topic_name(), 0)})
        await produce(bootstrap, topic.get_topic_name(), [(None, b"2"), (None, b"3")])
        stalled = await poll(port, "/readyz", lambda status, body: status == 503)
        assert stalled["stalled"] == [f"chores {topic.get_topic_name()}[0]"] and done == [b"1"]

        app.consumer.resume_partitions({TP(topic.get_topic_name(), 0)})
        # Ready means "not stalled": it can come with "2" done and "3" a fetch away (noida-db, 0.1 s).
        await poll(port, "/readyz", lambda status, body: status == 200 and len(done) == 3)
        assert done == [b"1", b"2", b"3"]
    finally:
        await app.stop()


async def test_readiness_covers_the_batch_agents_and_fails_when_one_stops_fetching(
    bootstrap, pipeline_settings
):
    # The hot stages run as batch agents with their own consumers (worker/batches.py): a consumer
    # that stops fetching must flip readiness just like a Faust agent's.
    pipeline = build(pipeline_settings(stall_timeout_s=2))
    app, port, topics = pipeline.app, pipeline.app.conf.web_port, pipeline.topics
    agent = pipeline.agents["orders-to-payouts"]
    orders, payouts = topics.orders.get_topic_name(), topics.payouts.get_topic_name()
    await app.start()
    try:
        ready = await poll(
            port, "/readyz", lambda status, body: status == 200 and "orders-to-payouts" in body["agents"]
        )
        assert set(ready["agents"]) >= {"orders-to-payouts", "screening", "settlement"}
        await produce(bootstrap, orders, [(b"s-1", order("o-1", "10.00"))])
        await read_until(bootstrap, payouts, lambda v: len(v) >= 1)
        lag = ("streamline_consumer_lag", (("partition", "0"), ("topic", orders)))
        assert lag in samples((await fetch(port, "/metrics"))[1].decode())

        client = agent._client  # the batch agent's own aiokafka consumer
        client.pause(*client.assignment())
        for n in (2, 3, 4):  # one produce request each: Tansu's end offsets count batches (README)
            await produce(bootstrap, orders, [(b"s-1", order(f"o-{n}", "10.00"))])
        stalled = await poll(port, "/readyz", lambda status, body: status == 503)
        assert [s for s in stalled["stalled"] if s.startswith("orders-to-payouts ")], stalled
        assert stalled["agents"]["orders-to-payouts"]["lag"] >= 1

        client.resume(*client.assignment())
        ready = await poll(port, "/readyz", lambda status, body: status == 200)
        assert ready["agents"]["orders-to-payouts"]["lag"] == 0
        delivered = await read_until(bootstrap, payouts, lambda v: len(v) >= 4)
        assert sorted(p["order_id"] for p in delivered) == ["o-1", "o-2", "o-3", "o-4"]
    finally:
        await app.stop()


async def test_the_worker_hands_its_heaps_free_pages_back_and_says_so(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    port = pipeline.app.conf.web_port

    stats = await poll(port, "/stats", lambda status, body: body["memory"]["trims"] >= 2)

    memory = stats["memory"]
    assert memory["trimmed"] is True and memory["returned_mb"] >= 0
    assert 0 < memory["rss_mb"] <= memory["peak_rss_mb"]
    found = samples((await fetch(port, "/metrics"))[1].decode())
    assert ("streamline_memory_returned_bytes_total", ()) in found
