"""`Written`: the decoded values a worker wrote to a table, used only while the table holds them; and
what the decided-reviews table keeps."""

from __future__ import annotations

from collections.abc import Callable

from tests.unit.test_review_rules import decision, payout
from worker.review.records import ReviewedPayout
from worker.review.tables import ReviewTables, Written
from worker.runtime import context
from worker.wire import encode


def decoder(calls: list[bytes], raw: bytes) -> Callable[[], str]:
    def decode() -> str:
        calls.append(raw)
        return raw.decode()

    return decode


def test_what_was_written_is_not_decoded_again() -> None:
    written: Written[str] = Written(size=10)
    written.put("s-1", b"one", "decoded one")
    calls: list[bytes] = []
    assert written.get("s-1", b"one", decoder(calls, b"one")) == "decoded one"
    assert calls == []


def test_bytes_other_than_those_written_are_decoded() -> None:
    """A recovery after a rebalance may change a key under the worker: the table wins."""
    written: Written[str] = Written(size=10)
    written.put("s-1", b"one", "decoded one")
    calls: list[bytes] = []
    assert written.get("s-1", b"two", decoder(calls, b"two")) == "two"
    assert written.get("s-2", b"one", decoder(calls, b"one")) == "one"
    assert calls == [b"two", b"one"]


def test_only_the_most_recently_written_keys_are_kept() -> None:
    written: Written[str] = Written(size=2)
    for key in ("a", "b", "a", "c"):  # "b" is now the longest unwritten
        written.put(key, key.encode(), key.upper())
    calls: list[bytes] = []
    assert [written.get(k, k.encode(), decoder(calls, k.encode())) for k in "abc"] == ["A", "b", "C"]
    assert calls == [b"b"]


def test_a_decision_is_kept_with_its_payout_and_one_kept_alone_before_is_still_read() -> None:
    decided: dict[bytes, bytes] = {}
    tables = ReviewTables(
        None, pending={}, decided=decided, seller_history={}, recent={}, held=None, partitions=1
    )  # type: ignore[arg-type]
    reviewed = ReviewedPayout(**payout().asdict(), review=decision())
    tables.record(reviewed)
    assert tables.decided_review("po-1") == reviewed and tables.decision("po-1") == decision()
    decided[b"po-1"] = encode(decision())  # as written before decisions kept their payout
    assert tables.decided_review("po-1") == decision() and tables.decision("po-1") == decision()
    assert tables.decision("po-2") is None


def test_a_rocksdb_table_partition_keeps_small_write_buffers_and_block_cache(make_settings) -> None:
    # Faust's defaults (three 64 MB write buffers and a 2 GB block cache per partition) let a worker
    # grow with what it wrote: 334 MB after settling 100,000 orders, about 200 MB with these (bench).
    settings = make_settings(table_store="rocksdb://").with_embedded_broker("127.0.0.1:1")
    app = context.context(settings).app
    ledger = app.Table("probe-ledger", partitions=6)
    tuned = app.Table("probe-tuned", partitions=6, options={"write_buffer_size": 1 << 19})

    options, own = ledger.data.rocksdb_options, tuned.data.rocksdb_options  # type: ignore[attr-defined]

    assert (options.write_buffer_size, options.max_write_buffer_number, options.block_cache_size) == (
        1 << 20,
        2,
        2 << 20,
    )
    assert (own.write_buffer_size, own.block_cache_size) == (1 << 19, 2 << 20)  # a table's own options win
