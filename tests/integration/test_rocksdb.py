"""Table state on RocksDB: every kind of writer works, and a restarted worker finds its tables there."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust import web
from faust.types import TP, StreamT, TableT

from tests.brokers import QUIRKS
from tests.integration.test_pipeline import order
from tests.kafka import produce, read_until
from tests.processes import free_port
from tests.reviews import TOKEN, decide, hold, pending_ids, stats, until, web_port
from tests.stores import each_store
from worker.runtime.app import PipelineApp, create_app
from worker.settings import Settings


def counting_app(settings: Settings) -> tuple[PipelineApp, TableT[str, int], str]:
    """The project's app with a small table-backed stage: count events per key."""
    app = create_app(settings)
    events = app.topic(f"{settings.topic_prefix}events", key_type=str, value_type=bytes, partitions=2)
    events.key_serializer, events.value_serializer = "raw", "raw"
    app.create_on_start([events])
    counts = app.Table("counts", default=int, partitions=2, key_type=str, value_type=int)

    @app.agent(events, name="count")
    async def count(stream: StreamT[bytes]) -> None:
        async for key, _value in stream.items():
            counts[key] += 1

    return app, counts, events.get_topic_name()


async def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def total(table: TableT[str, int]) -> dict[str, int]:
    return {key: table[key] for key in ("s-1", "s-2", "s-3")}


async def test_a_restarted_worker_finds_its_table_in_rocksdb(bootstrap, pipeline_settings, tmp_path: Path):
    settings = pipeline_settings(table_store="rocksdb://", data_dir=tmp_path / "state", topic_partitions=2)
    expected = {"s-1": 5, "s-2": 3, "s-3": 1}
    app, counts, events = counting_app(settings)
    await app.start()
    try:
        messages = [(key.encode(), b"x") for key, n in expected.items() for _ in range(n)]
        await produce(bootstrap, events, messages)
        await wait_for(lambda: total(counts) == expected)
    finally:
        await app.stop()

    tables = settings.datadir / "v1" / "tables"
    assert sorted(path.name for path in tables.glob("*.db")) == ["counts-0.db", "counts-1.db"]

    again, recounted, _ = counting_app(settings)
    changelog = recounted.changelog_topic.get_topic_name()
    store: Any = recounted.data  # the new worker's RocksDB store, before it connects to anything
    persisted = [store.persisted_offset(TP(changelog, partition)) for partition in (0, 1)]
    # One changelog record per increment: the files hold the state up to the last of them.
    assert sum(offset + 1 for offset in persisted if offset is not None) == sum(expected.values())

    await again.start()
    try:
        await wait_for(lambda: again.tables.recovery.completed.is_set() and not again.in_recovery)
        assert total(recounted) == expected
    finally:
        await again.stop()


def writers_app(settings: Settings) -> tuple[PipelineApp, TableT[bytes, bytes], str]:
    """A table keyed like the review tables (`use_partitioner`), written by every kind of writer."""
    app = create_app(settings)
    events = app.topic(f"{settings.topic_prefix}writes", key_type=bytes, value_type=bytes, partitions=2)
    events.key_serializer, events.value_serializer = "raw", "raw"
    app.create_on_start([events])
    table = app.Table("written", partitions=2, key_type=bytes, value_type=bytes, use_partitioner=True)

    @app.agent(events, name="by-event")
    async def by_event(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            table[event.key] = b"event"

    @app.timer(0.2, name="by-timer")
    async def by_timer() -> None:
        if not app.rebalancing and app.assignor.assigned_actives():
            table[b"timer"] = b"timer"

    @app.page("/write/{key}")
    async def by_view(view: web.View, request: web.Request, key: str) -> web.Response:
        table[key.encode()] = b"view"
        return view.json({"written": key})

    return app, table, events.get_topic_name()


@contextlib.asynccontextmanager
async def restarted(settings: Settings) -> AsyncIterator[TableT[bytes, bytes]]:
    """`writers_app` started again on the same files, its table recovered."""
    again, recovered, _ = writers_app(settings)
    await again.start()
    try:
        await wait_for(lambda: again.tables.recovery.completed.is_set() and not again.in_recovery)
        yield recovered
    finally:
        await again.stop()


@each_store
async def test_a_table_is_written_from_events_timers_and_web_views(
    bootstrap, pipeline_settings, tmp_path: Path, table_store: str
) -> None:
    # Faust's RocksDB store filed every write under the current event's partition, so a write from a
    # timer or a view (no event) failed its `assert event is not None` and crashed the worker.
    settings = pipeline_settings(table_store=table_store, data_dir=tmp_path / "state", topic_partitions=2)
    expected = {b"timer": b"timer", b"k-event": b"event", b"k-view": b"view"}
    app, table, events = writers_app(settings)
    await app.start()
    try:
        await produce(bootstrap, events, [(b"k-event", b"x")])
        await wait_for(lambda: table.get(b"timer") == b"timer" and table.get(b"k-event") == b"event")
        await until(lambda: _get(settings.web_port, "/write/k-view"), lambda status: status == 200)
        assert {key: table.get(key) for key in expected} == expected
        assert not app._crash_reason  # type: ignore[attr-defined]
    finally:
        await app.stop()

    async with restarted(settings) as recovered:
        assert {key: recovered.get(key) for key in expected} == expected


async def test_a_partition_that_comes_back_reopens_while_its_old_database_is_still_referenced(
    bootstrap, pipeline_settings, tmp_path: Path
) -> None:
    # Faust dropped a revoked partition's database and left it to the garbage collector; while
    # anything still held it (here a reader paging through the table), the partition's return to the
    # same worker failed on RocksDB's lock for 30 s, and then the worker crashed.
    settings = pipeline_settings(table_store="rocksdb://", data_dir=tmp_path / "a", topic_partitions=2)
    app, table, events = writers_app(settings)
    # No standby copies: the partition leaves the worker altogether, as it does with more workers.
    app.conf.table_standby_replicas = 0
    await app.start()
    other = None
    try:
        keys = [f"k-{n}".encode() for n in range(8)]  # both partitions (murmur2)
        await produce(bootstrap, events, [(key, b"x") for key in keys])
        await wait_for(lambda: all(table.get(key) == b"event" for key in keys))
        store: Any = table.data
        # Readers half way through each partition keep its database alive (rocksdict's own iterators).
        readers = [db.items() for db in store._dbs.values()]
        assert len(readers) == 2 and all(next(iter(reader)) for reader in readers)

        changelog = table.changelog_topic.get_topic_name()
        both = {TP(changelog, 0), TP(changelog, 1)}
        other = writers_app(
            settings.model_copy(update={"data_dir": tmp_path / "b", "web_port": free_port()})
        )[0]
        await other.start()
        await wait_for(lambda: len(app.assignor.assigned_actives() & both) == 1, timeout=60)
        await other.stop()
        other = None
        await wait_for(lambda: app.assignor.assigned_actives() >= both and not app.rebalancing, timeout=60)
        await wait_for(lambda: app.tables.recovery.completed.is_set() and not app.in_recovery)

        await produce(bootstrap, events, [(key, b"y") for key in keys])
        await wait_for(lambda: all(table.get(key) == b"event" for key in keys) and app._crash_reason is None)
        assert {key: table.get(key) for key in keys} == dict.fromkeys(keys, b"event")
        assert not app._crash_reason  # type: ignore[attr-defined]
        del readers
    finally:
        if other is not None:
            await other.stop()
        await app.stop()


async def test_a_write_after_the_store_stopped_is_an_error_and_leaves_nothing_open(
    bootstrap, pipeline_settings, tmp_path: Path
) -> None:
    # A timer's or a view's write that came after the store's stop reopened the partition's database
    # for good: the next worker in the same process could not open it (RocksDB's lock).
    settings = pipeline_settings(table_store="rocksdb://", data_dir=tmp_path / "state", topic_partitions=2)
    app, table, _ = writers_app(settings)
    await app.start()
    try:
        await wait_for(lambda: table.get(b"timer") == b"timer")
    finally:
        await app.stop()
    store: Any = table.data  # the write a timer makes while the app stops: its changelog record is sent
    with pytest.raises(RuntimeError, match="after its store stopped"):
        store[b"late"] = b"write"

    async with restarted(settings) as recovered:
        assert recovered.get(b"timer") == b"timer"
        assert recovered.get(b"late") is None


async def _get(port: int, path: str) -> int:
    from tests.reviews import call

    return (await call(port, "GET", path, token=None))[0]


@each_store
async def test_a_restart_recovers_the_ledger_and_reviews_then_settles_holds_and_escalates(
    bootstrap, start_pipeline, tmp_path: Path, table_store: str
) -> None:
    settings: dict[str, Any] = {
        "table_store": table_store,
        "data_dir": tmp_path / "state",  # the same files for both runs
        "review_api_token": TOKEN,
        "review_threshold": Decimal("500.00"),
        "review_sla": "3s",
        "kafka_session_timeout_s": 3 if QUIRKS == "tansu" else 6,  # noida-db: 6 s is its minimum
    }
    first = await start_pipeline(**settings)
    topics = first.topics
    orders, approved = topics.orders.get_topic_name(), topics.payouts_approved.get_topic_name()
    escalated = topics.payouts_review_escalated.get_topic_name()
    await produce(bootstrap, orders, [(b"s-1", order("o-small", "10.00"))])
    [early] = await hold(bootstrap, first, ["o-early"])
    await read_until(bootstrap, escalated, bool)
    await until(lambda: stats(web_port(first)), lambda s: s["ledger"]["settled"] == 1)
    await first.app.stop()

    second = await start_pipeline(**settings)
    port = web_port(second)
    # Recovered: the held payout still waits, and the settled one is a duplicate when repeated.
    assert early in await until(lambda: pending_ids(port), lambda ids: early in ids)
    await produce(bootstrap, orders, [(b"s-1", order("o-small", "10.00"))])
    await until(lambda: stats(port), lambda s: s["ledger"]["duplicates_collapsed"] == 1)
    # And it goes on: a decision moves the recovered payout, a new one is held and escalated once.
    assert (await decide(port, early, "approve"))[0] == 200
    [late] = await hold(bootstrap, second, ["o-late"])
    announced = await read_until(bootstrap, escalated, lambda values: len(values) >= 2)
    assert sorted(a["payout"]["payout_id"] for a in announced) == sorted([early, late])
    outcome = await read_until(bootstrap, approved, lambda v: any(p["payout_id"] == early for p in v))
    assert [p["review"]["decision"] for p in outcome if p["payout_id"] == early] == ["approve"]
    # The recovered ledger holds `o-small`; `early` settles beside it.
    await until(lambda: stats(port), lambda s: s["ledger"]["settled"] == 2)
    assert not second.app._crash_reason  # type: ignore[attr-defined]


@each_store
async def test_table_writes_reach_their_changelog_in_order_when_a_send_fails_or_waits(
    bootstrap, pipeline_settings, tmp_path: Path, table_store: str
) -> None:
    # Every table write joins one queue to the changelogs (worker/runtime/changelogs.py): a send that
    # fails keeps its writes for the next one, and a write made while a send waits goes after it, so
    # the changelog, and a table recovered from it, ends with the last value written.
    settings = pipeline_settings(table_store=table_store, data_dir=tmp_path / "state", topic_partitions=2)
    app, table, _ = writers_app(settings)
    await app.start()
    try:
        await wait_for(lambda: table.get(b"timer") == b"timer")  # assigned, the timer writing
        client = app.producer._ensure_producer()
        send_batch, calls, held = client.send_batch, [], asyncio.Event()

        async def failing_then_held(builder: Any, topic: str, *, partition: int) -> Any:
            calls.append(topic)
            if len(calls) == 1:
                raise KafkaTimeoutError()
            await held.wait()
            return await send_batch(builder, topic, partition=partition)

        client.send_batch = failing_then_held
        table[b"k"] = b"first"
        await wait_for(lambda: len(calls) >= 2)  # failed once; sent again and waiting
        table[b"k"] = b"second"
        held.set()
        changelog = f"{app.conf.id}-written-changelog"
        records = await read_until(
            bootstrap, changelog, lambda kv: (b"k", b"second") in kv, decode=None, with_keys=True
        )
        assert [value for key, value in records if key == b"k"] == [b"first", b"second"], records
    finally:
        await app.stop()

    async with restarted(settings) as recovered:
        assert recovered.get(b"k") == b"second"
