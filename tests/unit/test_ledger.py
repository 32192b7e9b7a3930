"""The ledger's entries as the table keeps them (bytes), and the totals kept per partition."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from worker.errors import InvalidRecord
from worker.runtime.outbox import Outbox
from worker.settlement.ledger import Ledger, Settlement, Tally, decode_settlement, ledger_totals
from worker.wire import checked, encode


def entry(n: int, state: str = "approved", net: str = "10.50", currency: str = "EUR", partition: int = 0):
    return checked(
        Settlement,
        payout_id=f"p-{n}",
        seller_id="s-1",
        state=state,
        net=Decimal(net),
        currency=currency,
        settled_at=datetime(2026, 12, 1, 10, 0, n, 123456, tzinfo=UTC),
        ledger_partition=partition,
    )


def test_an_entry_is_read_back_as_it_was_written() -> None:
    written = entry(1, net="1234.05")
    assert decode_settlement(encode(written)) == written


def test_an_entry_written_by_an_earlier_version_as_a_faust_record_is_read() -> None:
    # Before entries were kept as bytes, Faust serialized the Settlement record for the changelog.
    written = Settlement(
        payout_id="p-1",
        seller_id="s-1",
        state="rejected",
        net=Decimal("7.00"),
        currency="GBP",
        settled_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        ledger_partition=3,
    )
    assert decode_settlement(written.dumps(serializer="json")) == written


def test_an_entry_that_is_not_one_is_refused_with_its_reason() -> None:
    with pytest.raises(InvalidRecord, match="net"):
        decode_settlement(orjson.dumps({**orjson.loads(encode(entry(1))), "net": 10.5}))


def test_totals_count_and_sum_by_state_and_currency_over_the_partitions_given() -> None:
    mine, other = Tally(), Tally()
    for written in (entry(1), entry(2, net="0.25"), entry(3, "rejected"), entry(4, currency="GBP")):
        mine.add(written)
    other.add(entry(5, net="99.00"))
    totals = ledger_totals([mine], {"duplicate": 2})
    assert totals == {
        "settled": 4,
        "by_state": {
            "approved": {"EUR": {"count": 2, "net": "10.75"}, "GBP": {"count": 1, "net": "10.50"}},
            "rejected": {"EUR": {"count": 1, "net": "10.50"}},
        },
        "duplicates_collapsed": 2,
        "conflicts": 0,
    }
    assert ledger_totals([mine, other], {})["by_state"]["approved"]["EUR"] == {"count": 3, "net": "109.75"}


@contextlib.contextmanager
def allocated() -> Iterator[list[float]]:
    """The MB allocated (and not freed) inside the block, as tracemalloc counts them: exact, unlike RSS,
    which memory an earlier test freed keeps from growing."""
    grown: list[float] = []
    tracing = tracemalloc.is_tracing()  # (PYTHONTRACEMALLOC): then count from here, and leave it on
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    try:
        yield grown
        grown.append((tracemalloc.get_traced_memory()[0] - before) / 1e6)
    finally:
        if not tracing:
            tracemalloc.stop()


def test_json_kept_in_a_table_takes_its_size_not_orjsons_buffer() -> None:
    # orjson's output keeps its write buffer's memory (~4 KB each, measured): 20,000 of them would
    # take ~80 MB; as exact copies, ~7 MB.
    with allocated() as grown:
        kept = [encode(entry(n % 60)) for n in range(20_000)]
    assert kept[0] == encode(entry(0))
    assert grown[0] < 30, f"{grown[0]:.0f} MB for 20,000 entries"


def test_messages_an_outbox_holds_until_the_broker_has_them_take_their_size() -> None:
    # A worker at full speed held 12,000 payouts in its stages' outboxes (memray): 98 MB as orjson
    # returned them, about 8 KB each.
    outbox = Outbox()
    with allocated() as grown:
        for n in range(20_000):
            outbox.send("payouts", entry(n % 60), key=f"s-{n % 60}")  # type: ignore[arg-type]
    assert outbox.messages[0].value == encode(entry(0))
    assert grown[0] < 30, f"{grown[0]:.0f} MB for 20,000 messages"


def test_the_order_index_keeps_its_entries_at_their_size() -> None:
    # One index entry per settled payout: kept as orjson returned it, 20,000 took ~80 MB.
    ledger = Ledger(table={}, orders={})  # type: ignore[arg-type]  # a dict holds what a table holds
    with allocated() as grown:
        for n in range(20_000):
            ledger.index(f"o-{n}", f"s-{n % 60}")
    assert ledger.sellers_of("o-7") == ["s-7"]
    assert grown[0] < 30, f"{grown[0]:.0f} MB for 20,000 index entries"
