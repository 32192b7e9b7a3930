"""The measured variants. Each runs its own processes on its own topics and returns a `Result`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from bench import kafka
from bench.orders import Message, order
from bench.procs import Process, cpu_seconds, machine_busy, worker_env
from bench.progress import Progress

PIPELINE = ("orders", "payouts", "payouts-approved", "payouts-review", "payouts-rejected", "dead-letters")
FINAL = ("payouts-approved", "payouts-review", "dead-letters")
#: The parts of an approved payout's way the latency runs time (`Latencies.hops`).
HOPS = ("order -> payout", "payout -> approved", "approved -> read")


@dataclass(frozen=True)
class Run:
    """What every variant shares: the broker, a scratch directory, the orders, the progress line."""

    bootstrap: str
    workdir: Path
    orders: Sequence[Message]
    progress: Progress
    profile: Path | None = None
    broker_pid: int | None = None  #: the embedded broker's process, if the bench started one


@dataclass
class Result:
    """One variant's figures."""

    label: str
    orders: int
    #: Distinct orders that reached their final topic (every one must).
    counted: int
    seconds: float
    per_s: float
    peak_rss_mb: float | None
    duplicates: int = 0
    processes: int = 1
    latency_ms: dict[str, float] = field(default_factory=dict)
    #: p99 latency (ms) of each successive 5 s of the latency run.
    p99_by_5s: list[float] = field(default_factory=list)
    #: Latency run: p50 and p99 (ms) of each part of the way, and its count (`Latencies.hops`).
    hops_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Share of one core the worker used during the measured window.
    cpu_percent: float | None = None
    #: Throughput runs: CPU time (µs) the variant's processes used per order, from just before the first
    #: output to the end (every payout settled, for the full pipeline). Unlike orders/s, it does not
    #: depend on how many cores were free.
    cpu_us_per_order: float | None = None
    #: Full pipeline: seconds until every approved payout was also settled in the ledger (the slowest
    #: stages' end), and orders/s over them.
    settled_seconds: float | None = None
    settled_per_s: float | None = None
    #: Latency run, the worker: what each stage still had to handle (its lag, from `/readyz`) when the
    #: steady load ended. A stage that keeps up has a few records in flight; one that falls behind, more
    #: with every second.
    lag_at_end: dict[str, int] = field(default_factory=dict)
    #: Latency runs: the share of the window the measured process was ready to run but waited for a
    #: core, and how busy the machine's cores were (every process on it: the broker's, the bench's too).
    cpu_wait_percent: float | None = None
    machine_busy_percent: float | None = None
    #: Latency runs on an embedded broker: the share of a core the broker used meanwhile.
    broker_cpu_percent: float | None = None
    #: The topics the broker held when the variant started: none, each runs on a broker of its own.
    topics_at_start: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Command:
    """A process to start: `python <args>` with `env`."""

    name: str
    args: list[str]
    env: dict[str, str]


def _app_id(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:6]}"


def _names(prefix: str, names: Sequence[str]) -> list[str]:
    return [f"{prefix}{n}" for n in names]


async def raw_aiokafka(run: Run) -> Result:
    """Baseline: `bench/raw_aiokafka.py`, one hop orders -> payouts."""
    app = _app_id("raw")
    source, sink = f"{app}-orders", f"{app}-payouts"
    command = Command("raw", ["-m", "bench.raw_aiokafka", run.bootstrap, source, sink, app], {})
    return await throughput(run, "raw aiokafka, one hop", [command], [source, sink], [sink], sink)


async def worker_hop(run: Run) -> Result:
    """The worker's orders -> payouts stage alone (`bench/hop.py`)."""
    app = _app_id("hop")
    command = Command("hop", ["-m", "bench.hop"], worker_env(run.bootstrap, app))
    topics = _names(f"{app}-", PIPELINE)
    return await throughput(run, "worker, orders -> payouts hop", [command], topics, [topics[1]], topics[1])


async def worker_pipeline(run: Run, processes: int = 1) -> Result:
    """`python -m worker` x `processes`, orders to their final topics."""
    app = _app_id(f"full{processes}")
    commands = [
        Command(f"worker{n}", ["-m", "worker"], worker_env(run.bootstrap, app)) for n in range(processes)
    ]
    topics, final = _names(f"{app}-", PIPELINE), _names(f"{app}-", FINAL)
    label = f"worker, full pipeline, {processes} process{'es' if processes > 1 else ''}"
    ledger = f"{app}-settlement-ledger-changelog"
    return await throughput(run, label, commands, topics, final, topics[1], settled=ledger)


async def naive_faust(run: Run, count: int) -> Result:
    """The naive Faust pipeline (`bench/naive_faust.py`), orders to their final topics."""
    app = _app_id("naive")
    env = worker_env(run.bootstrap, app)
    topics, final = _names(f"{app}-", PIPELINE), _names(f"{app}-", FINAL)
    command = Command("naive", ["-m", "bench.naive_faust"], env)
    return await throughput(run, "naive Faust, full pipeline", [command], topics, final, topics[1], count)


async def throughput(
    run: Run,
    label: str,
    commands: list[Command],
    topics: list[str],
    outputs: list[str],
    start_topic: str,
    count: int | None = None,
    settled: str | None = None,
) -> Result:
    """Orders/s from the first output on `start_topic` until every order is on one of `outputs`, and
    with `settled` (the ledger's changelog) until every approved payout is settled too."""
    count = len(run.orders) if count is None else count
    # The ledger's changelog too, before anything reads it: a read would create it with 1 partition.
    await kafka.create_topics(run.bootstrap, [*topics, *([settled] if settled else [])])
    run.progress.step(f"{label}: producing {count:,} orders")
    await kafka.produce(run.bootstrap, topics[0], run.orders[:count], lambda n: run.progress.update(n, count))
    tally = await kafka.Tally(run.bootstrap, outputs, count).start()
    ledger = await kafka.Tally(run.bootstrap, [settled], 0, by_key=True).start() if settled else None
    processes = [Process(c.name, c.args, c.env, run.workdir, run.profile) for c in commands]
    cpu = CpuWindow(processes)
    settled_at = None

    def tick(outputs: kafka.Tally) -> None:
        cpu.start(outputs.count)
        run.progress.update(outputs.count, count)

    try:
        run.progress.step(label)
        done_at = await tally.wait(timeout=90 + count / 100, alive=lambda: _check_alive(processes), tick=tick)
        if ledger is not None:
            ledger.expected = len(tally.ids[topics[2]])  # payouts-approved: each is settled once
            run.progress.step(f"{label}: settling")
            settled_at = await ledger.wait(
                timeout=90 + count / 100,
                alive=lambda: _check_alive(processes),
                tick=lambda t: run.progress.update(t.count, t.expected),
            )
        cpu_us_per_order = cpu.per_order_us(tally.count)
        started = await kafka.first_timestamp(run.bootstrap, start_topic)
        rss = [p.read_peak_rss() or 0.0 for p in processes]
    finally:
        for process in processes:
            process.stop()
        await tally.stop()
        if ledger is not None:
            await ledger.stop()
    await kafka.delete_topics(run.bootstrap, [*topics, *([settled] if settled else [])])
    seconds = done_at - started
    result = Result(
        label,
        orders=count,
        counted=tally.count,
        seconds=seconds,
        per_s=count / seconds,
        peak_rss_mb=max(rss),
        duplicates=tally.records - tally.count,
        processes=len(processes),
        settled_seconds=None if settled_at is None else settled_at - started,
        settled_per_s=None if settled_at is None else count / (settled_at - started),
        cpu_us_per_order=cpu_us_per_order,
    )
    settling = f"; all settled after {result.settled_seconds:.2f} s" if result.settled_seconds else ""
    run.progress.note(f"{label}: {result.per_s:,.0f} orders/s over {seconds:.2f} s{settling}")
    return result


async def latency(run: Run, rate: float, seconds: float) -> Result:
    """The worker, end to end: order `created_at` -> read from payouts-approved, at a steady `rate`."""
    app = _app_id("latency")
    command = Command("latency-worker", ["-m", "worker"], worker_env(run.bootstrap, app))
    return await _latency(run, "worker", app, command, rate, seconds)


async def raw_latency(run: Run, rate: float, seconds: float) -> Result:
    """The same two hops on raw aiokafka (`bench/raw_chain.py`): the broker's share of the latency."""
    app = _app_id("rawlat")
    topics = _names(f"{app}-", PIPELINE)
    args = ["-m", "bench.raw_chain", run.bootstrap, *topics[:4], app]
    return await _latency(run, "raw aiokafka", app, Command("latency-raw", args, {}), rate, seconds)


async def _latency(run: Run, who: str, app: str, command: Command, rate: float, seconds: float) -> Result:
    topics = _names(f"{app}-", PIPELINE)
    await kafka.create_topics(run.bootstrap, topics)
    probe = Latencies(approved=topics[2], payouts=topics[1])
    tally = kafka.Tally(run.bootstrap, [topics[2], topics[3]], 10**12, fetch_wait_ms=5)
    handed = kafka.Tally(run.bootstrap, [topics[1]], 10**12, fetch_wait_ms=5)  # the payouts: first hop's end
    tally.on_record = handed.on_record = probe.note
    await tally.start()
    await handed.start()
    worker = Process(command.name, command.args, command.env, run.workdir, run.profile)
    producer = kafka.producer(run.bootstrap, linger_ms=0)
    await producer.start()
    try:
        run.progress.step(f"latency, {who}: waiting for the first payout")
        await _warm_up(producer, topics[0], tally, worker)
        if port := command.env.get("WEB_PORT"):  # the worker: ready, as a load balancer would wait for
            await _ready(f"http://127.0.0.1:{port}/readyz", worker)
        label = f"{who}, latency at {rate:,.0f} orders/s for {seconds:.0f} s"
        run.progress.step(label)
        cpu, waited, machine = worker.cpu_seconds(), worker.cpu_wait_seconds(), machine_busy()
        broker_pid = run.broker_pid
        broker_cpu = cpu_seconds(broker_pid) if broker_pid else 0.0
        sent = await _steady(producer, topics[0], rate, seconds, probe, run.progress, worker)
        cpu_percent = 100 * (worker.cpu_seconds() - cpu) / seconds
        cpu_wait_percent = 100 * (worker.cpu_wait_seconds() - waited) / seconds
        busy, total = (now - before for now, before in zip(machine_busy(), machine, strict=True))
        broker_percent = 100 * (cpu_seconds(broker_pid) - broker_cpu) / seconds if broker_pid else None
        lag_at_end = await _lags(f"http://127.0.0.1:{port}/readyz") if port else {}
        await _until(lambda: len(probe.orders) >= sent, 30, worker, "payouts")
        await _until(lambda: len(probe.payouts) >= sent, 30, worker, "payouts read by the hop timer")
        rss = worker.read_peak_rss()
    finally:
        worker.stop()
        await producer.stop()
        await tally.stop()
        await handed.stop()
    await kafka.delete_topics(run.bootstrap, topics)
    result = Result(
        label,
        orders=sent,
        counted=len(probe.orders),
        seconds=seconds,
        per_s=sent / seconds,
        peak_rss_mb=rss,
        duplicates=tally.records - tally.count,
        latency_ms=probe.summary(),
        p99_by_5s=probe.p99_series(),
        hops_ms=probe.hops(),
        cpu_percent=cpu_percent,
        lag_at_end=lag_at_end,
        cpu_wait_percent=cpu_wait_percent,
        machine_busy_percent=100 * busy / max(total, 1),
        broker_cpu_percent=broker_percent,
    )
    run.progress.note(f"{label}: {result.latency_ms}, p99 by 5 s: {result.p99_by_5s}")
    return result


class CpuWindow:
    """The CPU time a variant's processes use per order, from the last look before the first output:
    their start-up (imports, group joins) is left out."""

    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes
        self.before: float | None = None  #: CPU seconds at the last look with no output yet

    def cpu_seconds(self) -> float:
        return sum(process.cpu_seconds() for process in self.processes)

    def start(self, count: int) -> None:
        """Called every quarter second with the orders out so far, from the processes' start."""
        if count == 0:
            self.before = self.cpu_seconds()

    def per_order_us(self, count: int) -> float | None:
        """µs of CPU per order, `count` orders out by now."""
        if self.before is None or count == 0:
            return None
        return 1e6 * (self.cpu_seconds() - self.before) / count


def _check_alive(processes: list[Process]) -> None:
    for process in processes:
        process.check_alive()


class Latencies:
    """Order created -> approved payout read, for the orders of the steady window only."""

    #: The window of the p99 series: how latency moves as the run goes on.
    STEP_S = 5

    def __init__(self, approved: str, payouts: str) -> None:
        self.approved, self.payouts_topic = approved, payouts
        self.since = float("inf")
        self.orders: set[str] = set()  # steady-window orders seen in a final topic
        self.values: list[tuple[float, float]] = []  # (created, since the start; latency), seconds
        self.payouts: dict[str, float] = {}  # order id -> its payout's create time (first hop's end)
        self.times: dict[str, tuple[float, float, float]] = {}  # order id -> (created, screened, read)

    def note(self, now: float, topic: str, payout: dict[str, object], timestamp: float) -> None:
        created = datetime.fromisoformat(str(payout["order_created_at"])).timestamp()
        if created < self.since:
            return
        order_id = str(payout["order_id"])
        if topic == self.payouts_topic:
            self.payouts.setdefault(order_id, timestamp)  # a copy handled again later is not the way
            return
        self.orders.add(order_id)
        if topic == self.approved:
            self.values.append((created - self.since, now - created))
            self.times.setdefault(order_id, (created, timestamp, now))

    def hops(self) -> dict[str, dict[str, float]]:
        """p50 and p99 (ms) of each part of an approved payout's way, and how many payouts they cover,
        from the records' create times:
        order created -> payout handed to the producer (the first hop: fetch, stage, outbox), -> approved
        payout handed to the producer (the broker, the second hop), -> read by this probe (the send,
        the broker, this probe's fetch)."""
        parts: dict[str, list[float]] = {name: [] for name in HOPS}
        for order_id, (created, screened, read) in self.times.items():
            handed = self.payouts.get(order_id)
            if handed is None:
                continue
            spans = (handed - created, screened - handed, read - screened)
            for name, seconds in zip(HOPS, spans, strict=True):
                parts[name].append(seconds)
        return {
            name: {"p50": _at(sorted(v), 0.5), "p99": _at(sorted(v), 0.99), "count": len(v)}
            for name, v in parts.items()
            if v
        }

    def summary(self) -> dict[str, float]:
        """p50, p99 and max in ms, and how many payouts they cover."""
        ordered = sorted(latency for _, latency in self.values)
        if not ordered:
            return {}
        return {
            "p50": _at(ordered, 0.5),
            "p99": _at(ordered, 0.99),
            "max": _at(ordered, 1.0),
            "count": len(ordered),
        }

    def p99_series(self) -> list[float]:
        """The p99 (ms) of each successive `STEP_S` seconds of orders."""
        windows: dict[int, list[float]] = {}
        for created, latency in self.values:
            windows.setdefault(int(created // self.STEP_S), []).append(latency)
        return [_at(sorted(windows[n]), 0.99) for n in sorted(windows)]


def _at(ordered: list[float], q: float) -> float:
    """The `q` quantile of sorted seconds, in ms."""
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


async def _warm_up(producer: AIOKafkaProducer, topic: str, tally: kafka.Tally, worker: Process) -> None:
    rng = random.Random(1)
    deadline = time.monotonic() + 90
    while tally.count == 0:
        worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("the worker produced no approved payout in 90 s")
        key, value = order(rng, datetime.now(UTC))
        await producer.send(topic, value, key=key)
        await asyncio.sleep(0.2)


async def _steady(
    producer: AIOKafkaProducer,
    topic: str,
    rate: float,
    seconds: float,
    probe: Latencies,
    progress: Progress,
    worker: Process,
) -> int:
    rng, sent = random.Random(2), 0
    probe.since = time.time()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        for _ in range(int(elapsed * rate) - sent):
            key, value = order(rng, datetime.now(UTC))
            await producer.send(topic, value, key=key)
            sent += 1
        progress.update(len(probe.orders), int(rate * seconds))
        worker.check_alive()
        await asyncio.sleep(0.002)
    return sent


async def _ready(url: str, worker: Process, timeout: float = 90) -> None:
    """Until `url` answers 200: every stage has its partitions and has caught up."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            worker.check_alive()
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 in {timeout}s")
            await asyncio.sleep(0.1)


async def _lags(url: str) -> dict[str, int]:
    """Each stage's lag, as the worker's `/readyz` reports it (200 or 503 alike)."""
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        agents = (await answer.json())["agents"]
    return {name: agent["lag"] or 0 for name, agent in sorted(agents.items())}


async def _until(condition: Callable[[], bool], timeout: float, worker: Process, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not all {what} arrived in {timeout}s")
        await asyncio.sleep(0.1)
