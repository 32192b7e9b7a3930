"""Three workers, 20,000 orders at 800 a second, two kill -9s mid-stream: every order settles exactly once.

Run alone with `make test-crash`; part of `make test`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.brokers import broken_on
from tests.kafka import produce_many, read_until
from tests.processes import Worker, poll_stats, stats
from worker.broker import free_port
from worker.rules import payout_id_for

pytestmark = [
    pytest.mark.slow,
    broken_on(
        "noida",
        "a member killed with kill -9 is never expired from its group, so its partitions stay unconsumed",
        "test_the_partitions_of_a_member_killed_without_leaving_go_to_the_others_after_its_session",
    ),
]

ORDERS = 20_000
INVALID = 200
RATE = 800  # orders a second


def orders(unique: str) -> list[tuple[bytes, bytes]]:
    good = [
        (
            f"s-{n % 50}".encode(),
            orjson.dumps(
                {
                    "order_id": f"{unique}-o-{n}",
                    "seller_id": f"s-{n % 50}",
                    "customer_id": "c-1",
                    "amount": f"{10 + n % 900}.{n % 100:02d}",
                    "currency": "EUR",
                    "created_at": "2026-11-28T10:00:00Z",
                }
            ),
        )
        for n in range(ORDERS)
    ]
    bad = [
        (b"x", b"{not json") if n % 2 else (b"x", b'{"order_id": "missing-fields"}') for n in range(INVALID)
    ]
    mixed = good[: ORDERS // 2] + bad + good[ORDERS // 2 :]
    return mixed


def settled(workers: list[Worker]) -> int:
    return sum((stats(w.port) or {}).get("ledger", {}).get("settled", 0) for w in workers)


async def test_kill_9_twice_loses_nothing_and_settles_nothing_twice(
    bootstrap, unique, tmp_path: Path
) -> None:
    base = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "APP_ID": unique,
        "TOPIC_PREFIX": f"{unique}-",
        "TOPIC_PARTITIONS": "6",
        "STOREFRONT_ORDERS_PER_SECOND": "0",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "REVIEW_THRESHOLD": "1000000.00",
        "LOG_LEVEL": "warning",
    }
    workers = [
        Worker(
            {**base, "WEB_PORT": str(free_port()), "DATA_DIR": str(tmp_path / f"w{i}")},
            tmp_path,
            tmp_path / f"w{i}.log",
        )
        for i in range(3)
    ]
    producing: asyncio.Task[None] | None = None
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            poll_stats(worker.port, lambda s: True, timeout=60)
        started = time.monotonic()
        # A steady stream (about 25 s of it), so that both kills land while every stage is busy.
        stream = produce_many(bootstrap, f"{unique}-orders", orders(unique), chunk=RATE // 10, every=0.1)
        producing = asyncio.create_task(stream)

        recoveries = []
        for victim, fraction in ((workers[0], 0.3), (workers[1], 0.6)):
            await _wait(lambda f=fraction: settled(workers) >= ORDERS * f, 300, workers)
            victim.kill()
            killed_at = time.monotonic()
            victim.start()
            await asyncio.to_thread(poll_stats, victim.port, lambda s: s["ledger"]["settled"] > 0, 120)
            recoveries.append(time.monotonic() - killed_at)

        await producing
        expected = {payout_id_for(f"s-{n % 50}", f"{unique}-o-{n}") for n in range(ORDERS)}
        try:
            changelog = await read_until(
                bootstrap,
                f"{unique}-settlement-ledger-changelog",
                lambda v: len({k for k, _ in v}) >= ORDERS,
                timeout=300,
                decode=None,
                with_keys=True,
            )
        except AssertionError as error:
            stuck = await asyncio.to_thread(progress, workers)
            raise AssertionError(f"{str(error)[:300]}; workers: {stuck}") from None
        elapsed = time.monotonic() - started
        approved = await read_until(
            bootstrap, f"{unique}-payouts-approved", lambda v: len({p["payout_id"] for p in v}) >= ORDERS
        )
        letters = await read_until(
            bootstrap,
            f"{unique}-dead-letters",
            lambda v: len({(d["source_partition"], d["source_offset"]) for d in v}) >= INVALID,
        )
    finally:
        if producing is not None:
            producing.cancel()
        for worker in workers:
            worker.ensure_gone()

    writes: dict[str, list[dict]] = defaultdict(list)
    for key, value in changelog:
        writes[orjson.loads(key)].append(orjson.loads(value))
    assert set(writes) == expected  # nothing lost, nothing invented
    # Nothing settled twice: each payout written to the ledger once (a worker that takes a partition
    # over recovers the ledger to the changelog's very end, so a repeated payout finds its entry).
    settled_twice = {k: entries for k, entries in writes.items() if len(entries) > 1}
    assert not settled_twice, f"{len(settled_twice)} payouts settled twice: {list(settled_twice.items())[:3]}"
    assert {e[0]["state"] for e in writes.values()} == {"approved"}
    distinct_letters = {(d["source_partition"], d["source_offset"]) for d in letters}
    assert len(distinct_letters) == INVALID
    by_id = Counter(p["payout_id"] for p in approved)
    assert set(by_id) == expected
    assert sum(Decimal(p["net"]) for p in {p["payout_id"]: p for p in approved}.values()) == sum(
        Decimal(e[0]["net"]) for e in writes.values()
    )
    duplicates = len(approved) - len(by_id)
    print(
        f"\ncrash test: {ORDERS} orders + {INVALID} invalid; settled {len(writes)} once each "
        f"in {elapsed:.1f}s; duplicate messages on payouts-approved: {duplicates} "
        f"({duplicates / ORDERS:.2%}) collapsed by the ledger; "
        f"dead letters: {dict(Counter(d['reason'] for d in letters))} ({len(letters) - INVALID} repeated); "
        f"recovery after each kill: {', '.join(f'{r:.1f}s' for r in recoveries)}"
    )


def progress(workers: list[Worker]) -> dict[int, Any]:
    """What each worker says of its agents (/stats readiness): which one stalls, with what lag."""
    found = {}
    for worker in workers:
        readiness = (stats(worker.port) or {}).get("readiness", {})
        found[worker.port] = {
            "stalled": readiness.get("stalled"),
            "lag": {name: agent["lag"] for name, agent in readiness.get("agents", {}).items()},
        }
    return found


async def _wait(condition, timeout: float, workers: list[Worker]) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; workers: {await asyncio.to_thread(progress, workers)}")
        await asyncio.sleep(0.2)
