"""Table stores: Faust's own, with the RocksDB store able to write outside a stream event, and never
ahead of its changelog after a crash.

Faust's RocksDB store files a write under the partition of the event being processed
(`faust/stores/rocksdb.py`, `Store._set`: `assert event is not None`), even for a table created with
`use_partitioner=True`, whose changelog record goes to the partition of its key. So every write
from a timer, a web view or a batch of events (`take_events` sets no current event) failed, and the
worker crash-looped on `TABLE_STORE=rocksdb://`. Here such a table's write goes to its key's
partition, the one its changelog record goes to; a table without the partitioner keeps Faust's rule.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.stores import by_url
from faust.stores.rocksdb import Store as FaustRocksDBStore
from faust.types import TP, StoreT
from yarl import URL

logger = logging.getLogger(__name__)

_partitioner = DefaultPartitioner()
#: Left in DATA_DIR by a clean stop, taken away at start: its absence means the last stop was a crash.
CLEAN_STOP = "clean-stop"


class RocksDBStore(FaustRocksDBStore):
    """Faust's RocksDB store; a write to a `use_partitioner` table goes to its key's partition, and a
    partition's database stays open from its first use to the store's stop.

    Faust drops a revoked partition's database and relies on the garbage collector to close it; while
    anything still holds it, reopening that partition in the same process fails on RocksDB's lock
    (`lock hold by current process`), for 30 s of retries, and then the worker crashes. Here a revoked
    partition's database is set aside, open, and taken back if the partition comes back; the store's
    stop closes every one, and a write after it is an error rather than a database reopened for good.
    """

    _parked: dict[int, Any]
    _closed = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self._parked = {}

    def _open_for_partition(self, partition: int) -> Any:
        if self._closed:
            raise RuntimeError(
                f"table {self.table.name!r}: partition {partition} used after its store stopped"
            )
        parked = self._parked.pop(partition, None)
        return parked if parked is not None else super()._open_for_partition(partition)

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        for tp in tps:
            if tp.topic in table.changelog_topic.topics and tp.partition in self._dbs:
                self._parked[tp.partition] = self._dbs.pop(tp.partition)

    def reset_state(self) -> None:
        self._close_all()
        super().reset_state()

    async def stop(self) -> None:
        self._closed = True
        self._close_all()
        await super().stop()

    def _close_all(self) -> None:
        """Close every partition's database, assigned or set aside (Faust then forgets `_dbs`)."""
        for db in [*self._dbs.values(), *self._parked.values()]:
            db.close()
        self._parked.clear()

    def _set(self, key: bytes, value: bytes | None) -> None:
        if not self.table.use_partitioner:
            super()._set(key, value)
            return
        partition = key_partition(key, self.table.partitions or self.app.conf.topic_partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition the producer's default partitioner (murmur2) gives `key`."""
    return int(_partitioner(key, list(range(partitions)), []))


#: RocksDB's memory per table partition (each is a database of its own: 5 tables of 6 partitions make
#: 30). Faust's defaults, three 64 MB write buffers and a 2 GB block cache each, let a worker's memory
#: grow with what it wrote: peak RSS 334 MB after settling 100,000 orders; 277 MB with 4 MB buffers
#: and an 8 MB cache; about 17 MB less again with these, settling no slower (docs/performance.md).
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 2 * 1024 * 1024,
}


class Table(faust.Table[Any, Any]):
    """Faust's table, with `rocksdb://` served by `RocksDBStore`, its memory bounded (`ROCKSDB_OPTIONS`)."""

    def _new_store_by_url(self, url: str | URL) -> StoreT[Any, Any]:
        rocksdb = URL(str(url)).scheme == "rocksdb"
        store = RocksDBStore if rocksdb else by_url(url)
        options: dict[str, Any] = {
            "table_name": self.name,
            "key_type": self.key_type,
            "key_serializer": self.key_serializer,
            "value_serializer": self.value_serializer,
            "value_type": self.value_type,
            "loop": self.loop,
            "options": {**ROCKSDB_OPTIONS, **(self.options or {})} if rocksdb else self.options,
        }
        return store(url, self.app, self, **options)


def forget_unclean_tables(datadir: Path, tabledir: Path) -> None:
    """At start: drop the table files of a worker whose last stop was not clean.

    RocksDB writes a table change to disk at once, but its changelog record waits in the producer
    and dies with a `kill -9`; the input that caused it is not committed either, so it comes again,
    finds the change already in the local table and is a duplicate: the changelog, the tables' source
    of truth, never gets it (measured: 14 of 20,000 ledger entries in the crash test). So after a
    crash the files go, and the tables are rebuilt from their changelogs, as with memory://.
    """
    marker = datadir / CLEAN_STOP
    if marker.exists():
        marker.unlink()
    elif tabledir.is_dir() and any(tabledir.iterdir()):
        logger.warning(
            "the last stop was not clean: rebuilding the tables in %s from their changelogs", tabledir
        )
        shutil.rmtree(tabledir)


def stopped_cleanly(datadir: Path) -> None:
    """At a clean stop (every changelog record flushed): the table files may be reused."""
    if datadir.is_dir():
        (datadir / CLEAN_STOP).touch()
