"""The batch engine: a stage's source consumed a fetch at a time, beside Faust's agents and tables.

Faust moves every message through its consumer loop, a channel queue and a stream, with several
tasks and futures per message: that framework work caps an agent at a few thousand messages a
second whatever the agent does (docs/performance.md). A batch stage's runner instead gets the records
of a fetch and fills one `Outbox`, which is handed to the producer at once.

At least once: offsets are committed (every `broker_commit_interval`, Faust's setting, and before
partitions are handed over or the worker stops) only up to batches whose every message the broker
has confirmed, in fetch order. Up to `WINDOW` batches are in flight, so broker round trips overlap
with the next batch's work; if a delivery fails the worker stops, and the batches after the last
commit are handled again by whoever owns the partitions next. Each partition's records are handled
and published in order, so one seller's events stay in order.

Each batch stage has its own aiokafka consumer in its own group, `<app id>-<stage name>`: fetches
for different topics then go to the broker side by side, not one after the other. It publishes through
an aiokafka producer of its own too (Faust's settings), not behind the stream stages' table writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple, TypeAlias

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, ConsumerStoppedError
from faust.types import TP
from mode import Service

from worker.runtime import transport
from worker.runtime.app import PipelineApp
from worker.runtime.halts import Halt, Halts
from worker.runtime.kafka import harden, kafka_consumer, stop_consumer
from worker.runtime.observer import Observer
from worker.runtime.outbox import Outbox
from worker.runtime.progress import PartitionProgress
from worker.runtime.publish import Delivery, Publisher
from worker.runtime.stage import Runner

logger = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]

#: How long the broker may hold a fetch with no data: bounds the latency a quiet topic adds per hop
#: (Tansu answers a waiting fetch only after up to half of it, data or not), at the cost of idle fetches.
FETCH_MAX_WAIT_MS = 10
#: Records per fetch and handler call: large enough to amortise the per-batch work.
MAX_RECORDS = 1000
#: Batches handed to the producer but not yet confirmed: overlaps round trips with the next batch.
WINDOW = 4
#: How long a stopping batch agent waits to leave its group (a join in progress holds it).
LEAVE_WAIT_S = 2.0


class _Sent(NamedTuple):
    """A handled batch: its delivery, and the offsets to commit once it is confirmed."""

    delivery: Delivery
    offsets: dict[TopicPartition, int]


class BatchAgent(Service):
    """Consumes a stage's source in its own group, `<app id>-<name>`, runs the stage on each record;
    publishes the outbox, and confirms and commits behind (see the module docstring)."""

    def __init__(
        self, app: PipelineApp, runner: Runner, publisher: Publisher, halts: Halts, observer: Observer
    ) -> None:
        self.app, self.runner, self.publisher, self.halts = app, runner, publisher, halts
        self.observer = observer
        self.name, self.channel = runner.name, runner.stage.source
        self._client: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._handling = asyncio.Lock()  # held from a fetch's return until its batch is in the window
        self._window: asyncio.Queue[_Sent] = asyncio.Queue(WINDOW)
        self._confirmed: dict[TopicPartition, int] = {}
        self._committing = asyncio.Lock()
        self._last_commit = time.monotonic()
        self._broken = asyncio.Event()  # a delivery failed: nothing more will be confirmed
        #: Per assigned partition, what was handled since the assignment (for /readyz: worker/progress.py).
        self.progress: dict[TP, PartitionProgress] = {}
        super().__init__()

    def __repr__(self) -> str:
        return f"<BatchAgent {self.name}: {', '.join(self.channel.topics)}>"

    async def on_start(self) -> None:
        # A producer of its own: aiokafka sends one request per broker at a time, and the stage's
        # output would wait behind the table writes of the stream stages (docs/performance.md).
        self._producer = self.app.producer._new_producer()  # type: ignore[attr-defined]
        await self._producer.start()
        self.publisher = self.publisher.own(self._producer)
        self._client = kafka_consumer(
            self.app.settings, group=f"{self.app.conf.id}-{self.name}", fetch_max_wait_ms=FETCH_MAX_WAIT_MS
        )
        try:
            await self._client.start()
        except BaseException:
            await self._producer.stop()
            raise
        harden(self._client)
        # Subscribing after start: the group join (seconds) goes on in the background, so the
        # worker's other agents and services start meanwhile, and every agent joins at once.
        self._client.subscribe(list(self.channel.topics), listener=_Handover(self))

    async def on_stop(self) -> None:
        if self._client is not None:
            await self.drain()
        if self._producer is not None:  # bounded: what it cannot deliver is not committed anyway
            try:
                await asyncio.wait_for(self._producer.stop(), transport.STOP_WAIT_S)
            except TimeoutError:
                logger.warning("%s: its producer did not stop within %ss", self.name, transport.STOP_WAIT_S)
        if self._client is not None and not await stop_consumer(self._client, LEAVE_WAIT_S):
            logger.info("%s: stopped without waiting to leave its group (a join was in progress)", self.name)

    async def drain(self) -> None:
        """Confirm and commit every batch handled so far; no new batch starts meanwhile.

        Bounded (`STOP_WAIT_S`): a broker that confirms nothing meanwhile (gone, or a batch stuck on
        its way to it) leaves the unconfirmed batches uncommitted, to be handled again by the next owner.
        """
        try:
            async with asyncio.timeout(transport.STOP_WAIT_S):
                await self._handling.acquire()
        except TimeoutError:
            logger.warning("%s: a batch is still being handed to the broker: not committing it", self.name)
            return
        try:
            joined = asyncio.ensure_future(self._window.join())
            broken = asyncio.ensure_future(self._broken.wait())
            done, _ = await asyncio.wait(
                [joined, broken], timeout=transport.STOP_WAIT_S, return_when=asyncio.FIRST_COMPLETED
            )
            joined.cancel(), broken.cancel()
            if not done:
                logger.warning("%s: the broker confirmed nothing for %ss", self.name, transport.STOP_WAIT_S)
            await self._commit()  # what the broker confirmed, and nothing else
        finally:
            self._handling.release()

    async def track(self, assigned: list[TopicPartition]) -> None:
        """Progress starts afresh with an assignment, from the group's committed offsets."""
        self.progress.clear()
        now = time.monotonic()
        for tp in assigned:
            start = await client.committed(tp) if (client := self._open()) else None
            self.progress[TP(tp.topic, tp.partition)] = PartitionProgress(moved_at=now, start=start)

    def assigned(self) -> list[TP]:
        """The partitions this agent's consumer is assigned now (none once it is stopping)."""
        client = self._open()
        return [TP(tp.topic, tp.partition) for tp in client.assignment()] if client else []

    def highwater(self, tp: TP) -> int | None:
        """The high watermark of `tp` in the last fetch response (exact, even on Tansu)."""
        try:
            return self._client.highwater(TopicPartition(*tp)) if self._client else None
        except Exception:  # not assigned any more
            return None

    async def end_offsets(self, partitions: Sequence[TP]) -> dict[TP, int]:
        """The broker's end offsets of `partitions` (none once the agent is stopping)."""
        if (client := self._open()) is None:
            return {}
        ends = await client.end_offsets([TopicPartition(*tp) for tp in partitions])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    def _open(self) -> AIOKafkaConsumer | None:
        """The consumer, unless the agent is stopping: a closed aiokafka consumer asked anything opens a
        connection to the broker that nobody closes (the progress timer asks after the agents stop)."""
        return None if self.should_stop else self._client

    @Service.task
    async def _fetch(self) -> None:
        client = self._client
        while client is not None and not self.should_stop:
            try:
                records = await client.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            except ConsumerStoppedError:  # stopping: on_stop has drained and closed the consumer
                return
            async with self._handling:
                assigned = client.assignment()  # a rebalance may have taken partitions since the fetch
                batch = {tp: rs for tp, rs in records.items() if rs and tp in assigned}
                if batch and not self.should_stop:
                    await self._window.put(await self._publish(batch))

    async def _publish(self, batch: dict[TopicPartition, list[Record]]) -> _Sent:
        outbox = Outbox()
        for tp, records in list(batch.items()):
            for index, record in enumerate(records):
                error = self.runner.run(record, outbox)
                if error is not None:  # PROCESSING_ERRORS=stop: the partition stops at this record
                    self._halt(tp, record, error)
                    batch[tp] = records[:index]
                    break
        self.runner.end_batch(outbox)
        delivery = await self.publisher.publish(outbox)
        handled = {tp: records for tp, records in batch.items() if records}
        self.observer.batch(self.name)
        self._account(handled)
        return _Sent(delivery, {tp: records[-1].offset + 1 for tp, records in handled.items()})

    def _halt(self, tp: TopicPartition, record: Record, error: str) -> None:
        assert self._client is not None
        self._client.pause(tp)
        self._client.seek(tp, record.offset)  # drops what was fetched past it
        resume = partial(self._resume, tp, record)
        self.halts.add(Halt(self.name, record, error, datetime.now(UTC), resume))

    async def _resume(self, tp: TopicPartition, record: Record) -> None:
        """Past the record its partition stopped at (dead-lettered by now): commit it, fetch on."""
        await self.drain()  # what was handled before it is confirmed and committed first
        async with self._handling:
            self._confirmed[tp] = record.offset + 1
            await self._commit()
            if self._client is not None and tp in self._client.assignment():
                self._client.seek(tp, record.offset + 1)
                self._client.resume(tp)

    @Service.task
    async def _confirm(self) -> None:
        while True:  # also while stopping, until cancelled: `drain` waits for the window to empty
            sent = await self._window.get()
            try:
                await sent.delivery.confirmed()
            except BaseException:
                self._broken.set()
                raise
            self._confirmed.update(sent.offsets)
            self._window.task_done()
            if time.monotonic() - self._last_commit >= self.app.conf.broker_commit_interval:
                await self._commit()

    @Service.timer(1.0)
    async def _commit_when_quiet(self) -> None:
        interval = self.app.conf.broker_commit_interval
        if self._window.empty() and time.monotonic() - self._last_commit >= interval:
            await self._commit()

    async def _commit(self) -> None:
        async with self._committing:  # one at a time, so a partition's offset never goes back
            offsets, self._confirmed = self._confirmed, {}
            self._last_commit = time.monotonic()
            if not offsets or self._client is None:
                return
            try:
                await self._client.commit(offsets)
            except CommitFailedError as exc:  # the group moved on: the new owner handles these again
                logger.info("%s: commit refused after a rebalance (%s): %s", self.name, exc, offsets)

    def _account(self, batch: dict[TopicPartition, list[Record]]) -> None:
        """What the observer counts, and per-partition progress for `/readyz`."""
        now = time.monotonic()
        for tp, records in batch.items():
            part = self.progress.setdefault(TP(tp.topic, tp.partition), PartitionProgress(moved_at=now))
            if part.first_in is None:
                part.first_in = records[0].offset
            part.last_out, part.moved_at = records[-1].offset, now
            self.observer.took(self.name, tp.topic, len(records))


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """Gives partitions up only once everything handled from them is confirmed and committed;
    tracks progress afresh with each assignment."""

    def __init__(self, agent: BatchAgent) -> None:
        self.agent = agent

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.agent.halts.drop(revoked, [self.agent.name])  # the next owner meets the message again
        await self.agent.drain()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.agent.track(assigned)
