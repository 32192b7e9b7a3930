"""The settlement ledger: each payout's final state, written once, whatever is delivered again.

Kafka delivers at least once, so a crash or a rebalance can repeat messages on the outcome topics. The
ledger, keyed by the deterministic payout id, turns those repeats into no-ops (`settle`) and refuses
the same id with other content (`conflicting_duplicate`).

Next to it, `settlement-orders` (order_id -> the sellers whose payout for that order id settled) lets
a payout be found by its order (docs/journey.md): an order id is unique per seller only.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import faust
import orjson
from faust.types import TableT

from worker import wire
from worker.payouts.records import Payout
from worker.runtime.context import Context
from worker.wire import RECORD_OPTIONS, checked


class Settlement(faust.Record, namespace="streamline.Settlement", **RECORD_OPTIONS):
    """A payout's final state in the settlement ledger: written once, whatever is redelivered."""

    payout_id: str
    seller_id: str
    state: str  # "approved" or "rejected"
    net: Decimal
    currency: str
    settled_at: datetime
    ledger_partition: int  # the partition that owns this entry, so totals count only what a worker owns
    #: Where the payout was read on its final topic (in `ledger_partition`): its journey reads the
    #: record there again, for as long as the topic keeps it. Absent in entries written before.
    offset: int | None = None


class Settle(enum.Enum):
    """What the ledger does with a payout that reached a final topic."""

    NEW = "new"  # record it: the payout is settled now
    DUPLICATE = "duplicate"  # a redelivery of what is already settled: nothing changes
    CONFLICT = "conflict"  # the same payout id with other amounts or state: refuse and report


def settle(existing: Settlement | None, payout: Payout, state: str) -> Settle:
    """Decide how a payout reaching final `state` changes the ledger entry `existing`."""
    if existing is None:
        return Settle.NEW
    same = (existing.state, existing.net, existing.currency, existing.seller_id) == (
        state,
        payout.net,
        payout.currency,
        payout.seller_id,
    )
    return Settle.DUPLICATE if same else Settle.CONFLICT


def decode_settlement(raw: bytes) -> Settlement:
    """A ledger entry as the table keeps it (the JSON of its changelog), or InvalidRecord."""
    fields = wire.json_object(raw, limit=None)
    return checked(
        Settlement,
        payout_id=wire.text(fields, "payout_id"),
        seller_id=wire.text(fields, "seller_id"),
        state=wire.text(fields, "state"),
        net=wire.money(fields, "net", positive=False),
        currency=wire.text(fields, "currency"),
        settled_at=wire.moment(fields, "settled_at"),
        ledger_partition=wire.count(fields, "ledger_partition") or 0,
        offset=wire.count(fields, "offset"),
    )


@dataclass
class Tally:
    """Count and sum of net by (state, currency): one ledger partition's totals."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    sums: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def add(self, entry: Settlement) -> None:
        key = (entry.state, entry.currency)
        self.counts[key] += 1
        self.sums[key] = self.sums.get(key, Decimal("0")) + entry.net


def ledger_totals(tallies: Iterable[Tally], outcomes: Mapping[str, int]) -> dict[str, Any]:
    """Count and sum of net by state and currency over `tallies` (the partitions a worker owns)."""
    total = Tally()
    for tally in tallies:
        total.counts.update(tally.counts)
        for key, net in tally.sums.items():
            total.sums[key] = total.sums.get(key, Decimal("0")) + net
    by_state: dict[str, dict[str, dict[str, Any]]] = {}
    for (state, currency), count in sorted(total.counts.items()):
        by_state.setdefault(state, {})[currency] = {"count": count, "net": str(total.sums[(state, currency)])}
    return {
        "settled": sum(total.counts.values()),
        "by_state": by_state,
        "duplicates_collapsed": outcomes.get("duplicate", 0),
        "conflicts": outcomes.get("conflict", 0),
    }


@dataclass
class Ledger:
    """The ledger table (payout_id -> the entry's JSON), its totals, and what this worker's
    settlement stage saw.

    Entries are kept as their changelog's bytes, not as records: 100,000 settled payouts took 103 MB as
    records and 36 MB as bytes. So the totals of `/stats` are kept per partition as entries are
    written, and counted again from the table whenever a rebalance's recovery completes (the table's
    entries then are all there is: restored, taken over, or left by another worker).
    """

    table: TableT[str, bytes]
    #: order_id -> the seller ids whose payout for it settled (a JSON list), on the sellers' partition.
    orders: TableT[bytes, bytes]
    seen: Counter[str] = field(default_factory=Counter)  #: new, duplicate, conflict
    tallies: dict[int, Tally] = field(default_factory=dict)

    def entry(self, payout_id: str) -> Settlement | None:
        """The payout's ledger entry, if it is settled."""
        raw = self.table.get(payout_id)
        return None if raw is None else decode_settlement(raw)

    def record(self, entry: Settlement) -> None:
        """Write a new entry, and count it."""
        self.table[entry.payout_id] = wire.encode(entry)
        self.tallies.setdefault(entry.ledger_partition, Tally()).add(entry)

    def recount(self) -> None:
        """Count every entry of the table again."""
        tallies: dict[int, Tally] = {}
        for raw in self.table.values():
            entry = decode_settlement(raw)
            tallies.setdefault(entry.ledger_partition, Tally()).add(entry)
        self.tallies = tallies

    def index(self, order_id: str, seller_id: str) -> None:
        """Remember that the payout of `seller_id` for `order_id` settled."""
        sellers = self.sellers_of(order_id)
        if seller_id not in sellers:
            self.orders[order_id.encode()] = wire.encode([*sellers, seller_id])

    def sellers_of(self, order_id: str) -> list[str]:
        """The sellers whose payout for `order_id` settled here (usually one)."""
        raw = self.orders.get(order_id.encode())
        return [] if raw is None else list(orjson.loads(raw))

    def totals(self, owned: Container[int]) -> dict[str, Any]:
        """This worker's part of `/stats`: the partitions it owns, and what it saw since start."""
        return ledger_totals((t for p, t in self.tallies.items() if p in owned), self.seen)


def register(ctx: Context) -> Ledger:
    """Declare the ledger table, and add its totals to `/stats`.

    Written from payout topics keyed by seller, to the partition of the event being processed: every
    event about one payout arrives on one partition, so its entry lives with it. The order index too:
    a worker finds a payout by order id among the partitions it owns (`worker.journey` asks them all).
    """

    def table(name: str, key: type, value: type, purpose: str) -> TableT[Any, Any]:
        return ctx.app.Table(
            name, key_type=key, value_type=value, partitions=ctx.settings.topic_partitions, help=purpose
        )

    ledger = Ledger(
        table("settlement-ledger", str, bytes, "Final state of every payout, written once."),
        table("settlement-orders", bytes, bytes, "The sellers whose payout for an order id settled."),
    )
    approved = ctx.topics.payouts_approved.get_topic_name()

    @ledger.table.on_recover
    async def recount() -> None:
        ledger.recount()

    def owned() -> set[int]:
        assigned = ctx.app.assignor.assigned_actives()
        return {tp.partition for tp in assigned if tp.topic == approved}

    ctx.observer.section("ledger", lambda: ledger.totals(owned()))
    return ledger
