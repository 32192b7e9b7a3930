"""Three workers, 20,000 orders at 800 a second, two kill -9s mid-stream, reviewers deciding held
payouts throughout: every order ends once, in one outcome, and settles exactly once. On both stores.

Run alone with `.venv/bin/python -m pytest tests/integration/test_crash.py`; part of `make test`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.brokers import broken_on
from tests.kafka import produce_many, read_to_end, read_until
from tests.processes import Worker, free_port, poll_stats, stats
from tests.reviews import TOKEN
from tests.stores import each_store
from worker.payouts.rules import payout_id_for

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
HELD_EVERY = 20  # one order in 20 is above the review threshold: 1,000 held payouts


def seller(n: int) -> str:
    return f"s-{n % 50}"


def orders(unique: str) -> list[tuple[bytes, bytes]]:
    good = [
        (
            seller(n).encode(),
            orjson.dumps(
                {
                    "order_id": f"{unique}-o-{n}",
                    "seller_id": seller(n),
                    "customer_id": "c-1",
                    "amount": "2000.00" if n % HELD_EVERY == 0 else f"{10 + n % 900}.{n % 100:02d}",
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
    return good[: ORDERS // 2] + bad + good[ORDERS // 2 :]


def settled(workers: list[Worker]) -> int:
    return sum((stats(w.port) or {}).get("ledger", {}).get("settled", 0) for w in workers)


class Reviewers:
    """People deciding held payouts through the API while workers die: every other one is approved,
    the rest rejected. A worker that does not answer (killed, restarting) is simply asked later."""

    def __init__(self, workers: list[Worker], verdicts: dict[str, str]) -> None:
        self.workers, self.verdicts = workers, verdicts
        self.answers: Counter[int] = Counter()
        self.at_once = asyncio.Semaphore(20)  # a team of reviewers

    async def run(self) -> None:
        """Decide what waits, until cancelled."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as http:
            while True:
                for worker in self.workers:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                        await self._decide_on(http, worker.port)
                await asyncio.sleep(0.2)

    async def _decide_on(self, http: aiohttp.ClientSession, port: int) -> None:
        base = f"http://127.0.0.1:{port}"
        async with http.get(f"{base}/reviews?limit=500&scope=local") as response:
            page = await response.json()
        waiting = [r["payout"]["payout_id"] for r in page["reviews"]]
        await asyncio.gather(*(self._decide(http, base, payout_id) for payout_id in waiting))

    async def _decide(self, http: aiohttp.ClientSession, base: str, payout_id: str) -> None:
        verdict = self.verdicts[payout_id]
        body = {"reason": f"crash test: {verdict}"}
        async with self.at_once, http.post(f"{base}/reviews/{payout_id}/{verdict}", json=body) as response:
            self.answers[response.status] += 1  # 409: a retry after a kill found it decided


@each_store
async def test_kill_9_twice_loses_nothing_and_settles_nothing_twice(
    bootstrap, unique, tmp_path: Path, table_store: str
) -> None:
    base = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "APP_ID": unique,
        "TOPIC_PREFIX": f"{unique}-",
        "TOPIC_PARTITIONS": "6",
        "STOREFRONT_ORDERS_PER_SECOND": "0",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "REVIEW_THRESHOLD": "1000.00",
        "REVIEW_API_TOKEN": TOKEN,
        "TABLE_STORE": table_store,
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
    ids = {payout_id_for(seller(n), f"{unique}-o-{n}"): n for n in range(ORDERS)}
    held = {payout_id: n for payout_id, n in ids.items() if n % HELD_EVERY == 0}
    verdicts = {p: "approve" if n // HELD_EVERY % 2 == 0 else "reject" for p, n in held.items()}
    reviewers = Reviewers(workers, verdicts)
    tasks: list[asyncio.Task[None]] = []
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            poll_stats(worker.port, lambda s: True, timeout=60)
        started = time.monotonic()
        # A steady stream (about 25 s of it), so that both kills land while every stage is busy.
        stream = produce_many(bootstrap, f"{unique}-orders", orders(unique), chunk=RATE // 10, every=0.1)
        tasks = [asyncio.create_task(stream), asyncio.create_task(reviewers.run())]

        recoveries = []
        for victim, fraction in ((workers[0], 0.3), (workers[1], 0.6)):
            await _wait(lambda f=fraction: settled(workers) >= ORDERS * f, 300, workers)
            victim.kill()
            killed_at = time.monotonic()
            victim.start()
            await asyncio.to_thread(poll_stats, victim.port, lambda s: s["ledger"]["settled"] > 0, 120)
            recoveries.append(time.monotonic() - killed_at)

        await tasks[0]  # every order is on the broker; the reviewers decide until the ledger is whole
        try:
            await read_until(
                bootstrap,
                f"{unique}-settlement-ledger-changelog",
                lambda v: len({k for k, _ in v}) >= ORDERS,
                timeout=120,
                decode=None,
                with_keys=True,
            )
        except AssertionError:
            stuck = await asyncio.to_thread(progress, workers)
            answers = dict(reviewers.answers)
            trail = await _trail(bootstrap, unique, set(ids))
            raise AssertionError(f"trail: {trail}; reviewers: {answers}; workers: {stuck}") from None
        elapsed = time.monotonic() - started
        # Everyone stops; only then is every partition read to its end, late repeats included.
        for worker in workers:
            assert worker.stop() == 0, worker.tail()
        ledger = await read_to_end(bootstrap, f"{unique}-settlement-ledger-changelog", with_keys=True)
        approved = await read_to_end(bootstrap, f"{unique}-payouts-approved")
        rejected = await read_to_end(bootstrap, f"{unique}-payouts-rejected")
        letters = await read_to_end(bootstrap, f"{unique}-dead-letters")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            worker.ensure_gone()

    writes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, value in ledger:
        writes[orjson.loads(key)].append(value)
    assert set(writes) == set(ids)  # nothing lost, nothing invented
    # Nothing settled twice: each payout written to the ledger once (a worker that takes a partition
    # over recovers the ledger to the changelog's very end, so a repeated payout finds its entry).
    settled_twice = {k: entries for k, entries in writes.items() if len(entries) > 1}
    assert not settled_twice, f"{len(settled_twice)} payouts settled twice: {list(settled_twice.items())[:3]}"
    # Each order ends once, in one outcome: the one its reviewer chose, or approved if it was small.
    outcome = {p: "approved" for p in {d["payout_id"] for d in approved}}
    both = {d["payout_id"] for d in rejected} & set(outcome)
    assert not both, f"{len(both)} payouts both approved and rejected"
    outcome.update({d["payout_id"]: "rejected" for d in rejected})
    states = {"approve": "approved", "reject": "rejected"}
    expected = {p: "approved" for p in ids} | {p: states[v] for p, v in verdicts.items()}
    assert outcome == expected
    assert {p: entries[0]["state"] for p, entries in writes.items()} == expected
    reviewed = [d for d in approved + rejected if d["payout_id"] in held]
    assert all(d["review"]["reason"].startswith("crash test") for d in reviewed)
    by_id = {d["payout_id"]: d for d in approved + rejected}
    assert sum(Decimal(d["net"]) for d in by_id.values()) == sum(
        Decimal(e[0]["net"]) for e in writes.values()
    )
    distinct_letters = {(d["source_partition"], d["source_offset"]) for d in letters}
    assert len(distinct_letters) == INVALID
    repeats = Counter(d["payout_id"] for d in approved + rejected)
    duplicates = sum(repeats.values()) - len(repeats)
    print(
        f"\ncrash test ({table_store}): {ORDERS} orders ({len(held)} held and decided during the kills) + "
        f"{INVALID} invalid; settled {len(writes)} once each in {elapsed:.1f}s; duplicate messages on "
        f"the outcome topics: {duplicates} ({duplicates / ORDERS:.2%}) collapsed by the ledger; "
        f"dead letters: {dict(Counter(d['reason'] for d in letters))} ({len(letters) - INVALID} repeated); "
        f"recovery after each kill: {', '.join(f'{r:.1f}s' for r in recoveries)}"
    )


async def _trail(bootstrap: str, unique: str, ids: set[str]) -> dict[str, list[str]]:
    """Where the payouts the ledger lacks were seen: the topics that hold each of them."""
    changelog = await read_to_end(bootstrap, f"{unique}-settlement-ledger-changelog", with_keys=True)
    missing = ids - {orjson.loads(key) for key, _ in changelog}
    seen: dict[str, list[str]] = {payout_id: [] for payout_id in missing}
    names = ["payouts", "payouts-review", "held-reviews", "review-decisions", "payouts-approved"]
    for name in [*names, "payouts-rejected"]:
        for value in await read_to_end(bootstrap, f"{unique}-{name}"):
            found = value.get("payout_id") or (value.get("payout") or {}).get("payout_id")
            if found in seen:
                seen[found].append(name)
    for letter in await read_to_end(bootstrap, f"{unique}-dead-letters"):
        payload = base64.b64decode(letter.get("payload_base64") or "").decode(errors="replace")
        for payout_id in (p for p in seen if p in payload):
            seen[payout_id].append(f"dead-letters ({letter.get('reason')}: {letter.get('detail')!r:.200})")
    return seen


def progress(workers: list[Worker]) -> dict[int, Any]:
    """What each worker says of its agents (/stats readiness): which one stalls, with what lag."""
    found = {}
    for worker in workers:
        readiness = (stats(worker.port) or {}).get("readiness", {})
        found[worker.port] = {
            "stalled": readiness.get("stalled"),
            "lag": {name: agent["lag"] for name, agent in readiness.get("agents", {}).items()},
            "reviews": (stats(worker.port) or {}).get("reviews"),
            "ledger": (stats(worker.port) or {}).get("ledger", {}).get("settled"),
        }
    return found


async def _wait(condition: Any, timeout: float, workers: list[Worker]) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; workers: {await asyncio.to_thread(progress, workers)}")
        await asyncio.sleep(0.2)
