"""A stalled broker and a graceful shutdown: nothing lost, no restart needed, resume where it stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from tests.brokers import BROKER
from tests.kafka import produce_many, read_until
from tests.processes import Worker, free_port, poll_stats, stats
from worker.broker import embedded

pytestmark = pytest.mark.slow


def orders(prefix: str, count: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [
        (
            f"s-{n % 20}".encode(),
            orjson.dumps(
                {
                    "order_id": f"{prefix}-{n}",
                    "seller_id": f"s-{n % 20}",
                    "customer_id": "c-1",
                    "amount": f"{10 + n % 90}.00",
                    "currency": "EUR",
                    "created_at": "2026-11-28T10:00:00Z",
                }
            ),
        )
        for n in range(start, start + count)
    ]


def worker_env(bootstrap: str, unique: str, tmp_path: Path) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "APP_ID": unique,
        "TOPIC_PREFIX": f"{unique}-",
        "TOPIC_PARTITIONS": "3",
        "STOREFRONT_ORDERS_PER_SECOND": "0",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "WEB_PORT": str(free_port()),
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "warning",
    }


async def test_a_broker_frozen_for_15s_loses_nothing_and_needs_no_restart(unique, tmp_path: Path) -> None:
    with embedded(BROKER, free_port(), tmp_path / "broker") as broker:
        bootstrap = broker.bootstrap_servers
        worker = Worker(worker_env(bootstrap, unique, tmp_path), tmp_path, tmp_path / "worker.log").start()
        try:
            poll_stats(worker.port, lambda s: True, timeout=60)
            await produce_many(bootstrap, f"{unique}-orders", orders(unique, 300))
            await read_until(bootstrap, f"{unique}-payouts-approved", lambda v: len(v) >= 300, timeout=60)

            assert broker.process is not None
            os.kill(broker.process.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            # Orders keep coming while the broker is frozen: the producer holds them until it thaws.
            late = asyncio.create_task(produce_many(bootstrap, f"{unique}-orders", orders(unique, 300, 300)))
            await asyncio.sleep(15)  # the stall under test, not a wait for a condition
            os.kill(broker.process.pid, signal.SIGCONT)
            await late
            approved = await read_until(
                bootstrap,
                f"{unique}-payouts-approved",
                lambda v: len({p["order_id"] for p in v}) >= 600,
                timeout=120,
            )
            recovered_after = time.monotonic() - frozen_at - 15
            assert worker.process is not None and worker.process.poll() is None, "the worker died"
            assert {p["order_id"] for p in approved} == {f"{unique}-{n}" for n in range(600)}
            settled = poll_stats(worker.port, lambda s: s["ledger"]["settled"] == 600, timeout=60)
            print(
                f"\nbroker stall: 600 orders, all settled once; "
                f"caught up {recovered_after:.1f}s after SIGCONT; "
                f"duplicates collapsed: {settled['ledger']['duplicates_collapsed']}"
            )
        finally:
            if broker.process is not None:
                os.kill(broker.process.pid, signal.SIGCONT)
            worker.ensure_gone()


async def test_sigterm_commits_and_exits_0_within_10s_and_the_next_start_resumes(bootstrap, unique, tmp_path):
    env = worker_env(bootstrap, unique, tmp_path)
    first = Worker(env, tmp_path, tmp_path / "first.log").start()
    second = Worker(env, tmp_path, tmp_path / "second.log")
    try:
        poll_stats(first.port, lambda s: True, timeout=60)
        await produce_many(bootstrap, f"{unique}-orders", orders(unique, 1500))
        poll_stats(first.port, lambda s: s["ledger"]["settled"] >= 300, timeout=120)

        asked = time.monotonic()
        code = await asyncio.to_thread(first.stop, 15)
        took = time.monotonic() - asked
        assert code == 0
        assert took < 10, f"shutdown took {took:.1f}s"
        before = stats(first.port)
        assert before is None  # gone

        second.start()
        approved = await read_until(
            bootstrap,
            f"{unique}-payouts-approved",
            lambda v: len({p["order_id"] for p in v}) >= 1500,
            timeout=300,
        )
        # The Faust agents resume too: the settlement agent (Faust's consumer) settles every payout.
        ledger = poll_stats(second.port, lambda s: s["ledger"]["settled"] >= 1500, timeout=120)["ledger"]
    finally:
        first.ensure_gone()
        second.ensure_gone()
    assert ledger["settled"] == 1500
    ids = [p["order_id"] for p in approved]
    assert set(ids) == {f"{unique}-{n}" for n in range(1500)}
    repeated = len(ids) - len(set(ids))
    print(f"\ngraceful shutdown: exit 0 in {took:.1f}s; resumed; messages repeated on restart: {repeated}")
    assert repeated == 0, "a graceful stop must commit what it processed"
