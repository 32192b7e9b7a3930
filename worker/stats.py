"""Pipeline statistics, computed from Faust's own monitor: a pure snapshot plus a rate window."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Container, Iterable, Mapping
from decimal import Decimal
from typing import Any

from worker.records import Settlement


class RateWindow:
    """Events per second over the last `span` seconds, from samples of a running total."""

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> None:
        """Record that `total` events had happened by monotonic time `now`."""
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.span:
            self._samples.popleft()

    def rate(self) -> float:
        """Events per second between the oldest and newest sample in the window."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def snapshot(
    topics: Iterable[str],
    consumed: Mapping[str, int],
    produced: Mapping[str, int],
    agents: Mapping[str, int],
    dead_letter_topic: str,
    rate_per_s: float,
    uptime_s: float,
) -> dict[str, Any]:
    """The `/stats` document: per topic, per agent, dead letters, recent rate and uptime."""
    return {
        "topics": {
            name: {"consumed": consumed.get(name, 0), "produced": produced.get(name, 0)} for name in topics
        },
        "agents": dict(agents),
        "dead_letters": produced.get(dead_letter_topic, 0),
        "rate_per_s": round(rate_per_s, 2),
        "uptime_s": round(uptime_s, 1),
    }


def ledger_totals(
    entries: Iterable[Settlement], owned: Container[int], outcomes: Mapping[str, int]
) -> dict[str, Any]:
    """Count and sum of net by state and currency over the ledger partitions this worker owns."""
    counts: Counter[tuple[str, str]] = Counter()
    sums: dict[tuple[str, str], Decimal] = {}
    for entry in entries:
        if entry.ledger_partition in owned:
            key = (entry.state, entry.currency)
            counts[key] += 1
            sums[key] = sums.get(key, Decimal("0")) + entry.net
    by_state: dict[str, dict[str, dict[str, Any]]] = {}
    for (state, currency), count in sorted(counts.items()):
        by_state.setdefault(state, {})[currency] = {"count": count, "net": str(sums[(state, currency)])}
    return {
        "settled": sum(counts.values()),
        "by_state": by_state,
        "duplicates_collapsed": outcomes.get("duplicate", 0),
        "conflicts": outcomes.get("conflict", 0),
    }


def summary_line(before: Mapping[str, int], after: Mapping[str, int], seconds: float, waiting: Any) -> str:
    """What a person reads every ten seconds: counts since the last line, keyed as `counts` gives them
    (orders, approved, review, rejected, dead_letters), and how many payouts wait for review here."""
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    rate = delta.get("orders", 0) / seconds if seconds > 0 else 0.0
    line = (
        f"last {seconds:.0f} s: {delta.get('orders', 0)} orders ({rate:.1f}/s), "
        f"{delta.get('approved', 0)} approved, {delta.get('review', 0)} held for review, "
        f"{delta.get('rejected', 0)} rejected, {delta.get('dead_letters', 0)} dead letters"
    )
    return line if waiting is None else f"{line}; {waiting} waiting for review here"
