"""An idle worker leaves the CPU to others: no fetch is repeated at once when it brought nothing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import kafka as bench_kafka
from tests.integration.test_broker_quirks import create
from tests.integration.test_resilience import worker_env
from tests.processes import Worker, poll_json
from worker.runtime.kafka import close_fetches_for_good, hold_empty_fetches, stop_consumer

#: Of a core, the most an idle worker may use. Measured on noida-db (which answers a fetch without
#: data at once): 0.97 without `hold_empty_fetches`, about 0.2 with it.
IDLE_SHARE = 0.5


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


async def test_an_idle_worker_uses_less_than_half_a_core(bootstrap, unique, tmp_path: Path) -> None:
    worker = Worker(worker_env(bootstrap, unique, tmp_path), tmp_path, tmp_path / "worker.log").start()
    try:
        poll_json(worker.port, "/readyz", lambda r: r.get("ready") is True, timeout=60)
        assert worker.process is not None
        pid = worker.process.pid
        started, used = time.monotonic(), cpu_seconds(pid)
        time.sleep(5)  # the idle time being measured, not a wait for a condition
        share = (cpu_seconds(pid) - used) / (time.monotonic() - started)
        assert share < IDLE_SHARE, f"an idle worker used {share:.2f} of a core\n{worker.tail()}"
    finally:
        worker.stop()
        worker.ensure_gone()


async def idle_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A started consumer of a new, empty one-partition `topic`: its fetches bring nothing."""
    await create(bootstrap, topic, partitions=1)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    return consumer


async def test_a_fetch_cancelled_in_flight_ends_at_once(bootstrap, unique) -> None:
    # When its assignment goes (a rebalance), aiokafka's fetch loop cancels its fetch step and awaits
    # it. A close (a stop) whose cancel comes meanwhile is swallowed; the loop then waits for an
    # assignment that never comes, and the close waits for it for good: a worker's stop hung once in
    # CI, perhaps so (not reproduced). aiokafka's own step ends at once when cancelled; one that went on to
    # hold (the cancel taken for an empty fetch) kept that window open for up to 10 ms (and the close
    # itself no longer hangs in it: the next test).
    consumer = await idle_consumer(bootstrap, f"{unique}-idle")
    try:
        fetcher = consumer._fetcher
        fetch, fetching = fetcher._proc_fetch_request, asyncio.Event()
        steps: list[asyncio.Task[Any]] = []

        async def watched(*args: Any) -> bool:  # aiokafka's step, with its fetch in flight made visible
            steps.append(asyncio.current_task())  # type: ignore[arg-type]
            fetching.set()
            try:
                return bool(await fetch(*args))
            finally:
                fetching.clear()

        fetcher._proc_fetch_request = watched
        hold_empty_fetches(consumer)
        ended: list[bool] = []
        while len(ended) < 10:
            await asyncio.wait_for(fetching.wait(), 10)
            if not fetching.is_set():
                continue  # that fetch came back before this task ran: catch the next one
            step = steps[-1]
            step.cancel()  # its fetch is in flight (the broker has not answered the empty fetch)
            for _ in range(3):  # a few turns of the loop: aiokafka's step needs one
                await asyncio.sleep(0)
            ended.append(step.done())
        assert all(ended), f"{ended.count(False)} of {len(ended)} cancelled fetch steps still running"
    finally:
        await stop_consumer(consumer, 5)


async def test_a_close_ends_the_fetch_loop_even_when_aiokafka_swallows_its_cancel(bootstrap, unique) -> None:
    # The window the test above narrows, held open: a fetch step that ends late once cancelled, the
    # assignment lost (the loop cancels that step and awaits it), and then the close.
    consumer = await idle_consumer(bootstrap, f"{unique}-closing")
    close_fetches_for_good(consumer)
    fetcher = consumer._fetcher
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def ends_late(*args: Any) -> bool:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            await asyncio.sleep(0.3)  # still ending when the close comes
        return False

    fetcher._proc_fetch_request = ends_late
    try:
        await asyncio.wait_for(started.wait(), 10)  # the next fetch is this step
        consumer.unsubscribe()  # the assignment is gone: the loop cancels the step and awaits it
        await asyncio.wait_for(cancelled.wait(), 10)
        closing = asyncio.create_task(fetcher.close())  # aiokafka's own close would wait for good
        await asyncio.wait({closing}, timeout=10)  # (a cancel, as wait_for's, would end it: not this)
        assert closing.done() and fetcher._fetch_task.done(), "the close is still waiting on the loop"
    finally:
        await stop_consumer(consumer, 5)


async def test_the_bench_readers_do_not_repeat_an_empty_fetch_at_once(bootstrap, unique) -> None:
    # The bench's readers share the machine with the variant they time. noida-db answers a fetch without
    # data at once: a reader that asks again at once sent 3,300 fetches a second (85% of a core, idle).
    topic = f"{unique}-bench-idle"
    await bench_kafka.create_topics(bootstrap, [topic])
    tally = await bench_kafka.Tally(bootstrap, [topic], 1, fetch_wait_ms=5).start()
    try:
        assert tally.consumer is not None
        fetcher, fetches = tally.consumer._fetcher, 0
        fetch = fetcher._proc_fetch_request

        async def counted(*args: Any) -> bool:
            nonlocal fetches
            fetches += 1
            return bool(await fetch(*args))

        fetcher._proc_fetch_request = counted
        started = time.monotonic()
        await asyncio.sleep(2)  # the idle time being measured, not a wait for a condition
        rate = fetches / (time.monotonic() - started)
    finally:
        await tally.stop()
    assert rate <= 1.2 / bench_kafka.READER_HOLD_S, f"{rate:.0f} fetches a second"
