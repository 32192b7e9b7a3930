"""Table state on RocksDB: a worker restarted on the same data directory finds its tables there."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from faust.types import TP, StreamT, TableT

from tests.kafka import produce
from worker.app import PipelineApp, create_app
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
