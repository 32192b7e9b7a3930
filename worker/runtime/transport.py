"""Faust's transport (consumer and producer), with the fixes the pipeline relies on: the one place that
reaches into Faust's and aiokafka's private consumer and producer state (`tests/unit/test_contracts.py`
fails loudly when an upgrade moves what these fixes touch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify

from worker.runtime.changelogs import Changelogs
from worker.runtime.fetchloop import FetchLoop
from worker.runtime.kafka import fetched_highwaters, harden

logger = logging.getLogger(__name__)


#: How long a stop or a hand-over waits for the messages in progress (then leaves them uncommitted).
STOP_WAIT_S = 4.0


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer is hardened as every group consumer of the
    worker is (`kafka.harden`)."""

    async def on_start(self) -> None:
        await super().on_start()
        harden(self._consumer)


class AtLeastOnceConsumer(FetchLoop):
    """Faust's consumer, minus four ways to lose messages (measured here: 2 to 18 orders lost on a
    restart after a graceful stop; then 1 in about one restart in five, from the third).

    1. A stream skips messages fetched under an older group generation or while flow is stopped,
       and the pure-Python stream acks what it skips as if processed. Such acks are dropped here.
    2. When the offsets the fetcher delivers jump (after a rebalance, a partition kept its fetch
       position past messages the streams skipped), Faust records the hole as a "gap" and treats it
       as acked, so the commit passes over messages nobody processed. Holes are legitimate only on
       compacted or transactional topics, which this pipeline does not consume: here the partition
       is sent back to the first missing offset, and nothing after the hole is delivered until the
       missing messages are.
    3. Faust's commit skips a single unacked message right after the committed offset (an off-by-one
       in `Consumer._new_offset`). Here the commit waits for it, and fetches it again if no stream
       has it.
    4. After a rebalance Faust seeks each partition back to the group's committed offset, to fetch
       again what it dropped meanwhile (a fetch that returns while flow is stopped is thrown away);
       but a partition the group never committed is left where the fetcher stopped (aiokafka's
       `seek_to_committed` seeks only to a committed offset), past the messages dropped. Measured:
       the first decisions of a review-decisions partition never applied, the first payouts of a
       payouts-rejected partition never settled, in one crash-test run in two. Here such a partition
       goes back to its beginning.

    The stream stages share it, and with it the stops of `PROCESSING_ERRORS=stop`: a partition a stage
    stopped on is paused for all until none is stopped on it (`stop_at`, `go_on`), and a message an
    operator skipped is acknowledged once per stage (`pass_over`, `passed_over`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Partitions to fetch again from an offset that no stream processed (see `_new_offset`).
        self._refetch: dict[TP, int] = {}
        #: Where each partition the group never committed starts (see `perform_seek`).
        self._start: dict[TP, int] = {}
        #: The messages of the stream batches being handled now, by batch (see `handling`).
        self._handling: dict[int, Sequence[Message]] = {}
        #: The partitions stream stages stopped on (see `stop_at`).
        self._stops: dict[TP, _Stops] = {}
        #: Per partition, the stages that skipped each offset; forgotten on revoke, and at the partition's
        #: next skip once the commit passed them (see `_skipped_at`).
        self._skipped: dict[TP, dict[int, set[str]]] = {}

    @contextlib.contextmanager
    def handling(self, messages: Sequence[Message]) -> Iterator[None]:
        """While a stage handles `messages`: once flow stops, a stop or a hand-over waits for these
        and for no other message (`wait_empty`)."""
        key = id(messages)
        self._handling[key] = messages
        try:
            yield
        finally:
            del self._handling[key]
            notify(self._waiting_for_ack)

    def stop_at(self, stage: str, message: Message) -> None:
        """`stage` stopped at `message` (`PROCESSING_ERRORS=stop`): the stream stages share this consumer,
        so its partition pauses for all of them, until none is stopped on it (`go_on`)."""
        tp = _tp(message)
        stops = self._stops.setdefault(tp, _Stops(set(), message.offset + 1))
        stops.stages.add(stage)
        stops.fetch_from = min(stops.fetch_from, message.offset + 1)  # what this stage released
        self.pause_partitions([tp])

    async def go_on(self, stage: str, message: Message) -> None:
        """`stage` is past the message it stopped at (`Halts.skip`). Once no stage is stopped on
        the partition, it is fetched again from the first message a stopped stage released; each stage
        meets again what it skipped, and goes past it (`passed_over`). A partition no longer assigned is
        left alone: its next owner meets the message."""
        self.pass_over(stage, message)
        tp = _tp(message)
        stops = self._stops.get(tp)
        if stops is None or tp not in self.assignment():
            return
        if stops.stages - {stage}:
            stops.stages.discard(stage)
            return
        await self.seek(tp, stops.fetch_from)
        self.resume_partitions([tp])
        del self._stops[tp]

    def pass_over(self, stage: str, message: Message) -> None:
        """`stage` skips `message`: its copy is acknowledged through the refcount, once however often
        this is called, so the message is committed once every stage that received it is done with it."""
        skippers = self._skipped_at(message)
        if stage not in skippers:
            skippers.add(stage)
            message.ack(self)

    def passed_over(self, message: Message, stage: str | None = None) -> bool:
        """True when `stage` (by default: any stage) skipped `message`: fetched again, it goes unprocessed."""
        if not self._skipped:  # no skip since the assignment: every message of every stream batch asks
            return False
        skippers = self._skipped.get(_tp(message), {}).get(message.offset, set())
        return bool(skippers) if stage is None else stage in skippers

    def _skipped_at(self, message: Message) -> set[str]:
        """The stages that skipped `message`; the offsets the commit passed are forgotten."""
        tp = _tp(message)
        skipped, committed = self._skipped.setdefault(tp, {}), self._committed_offset.get(tp) or 0
        for offset in [offset for offset in skipped if offset < committed]:
            del skipped[offset]
        return skipped.setdefault(message.offset, set())

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Stops and skips end with the assignment: the next owner meets the messages again."""
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self._stops.pop(tp, None)
            self._skipped.pop(tp, None)

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        """Faust's wait, at a stop or a hand-over, for the messages in progress to be acknowledged,
        then a commit; bounded by STOP_WAIT_S, since a stage whose output cannot reach the broker
        never acknowledges its message (Faust's own wait has no bound, and its wait for an ack
        swallows cancellation). What is left is not committed: it is processed again on the next
        start, or by the partition's next owner."""
        deadline = time.monotonic() + STOP_WAIT_S
        with contextlib.suppress(TimeoutError):
            while self._in_progress() and not self.should_stop and time.monotonic() < deadline:
                await asyncio.wait_for(self.commit(), max(0.1, deadline - time.monotonic()))
                await self._wait_for_ack(timeout=1)
                self._clean_unacked_messages()
            if left := self._in_progress():  # at-least-once as designed: the stop's own line says why
                logger.info(
                    "%d message(s) still in progress after %ss are left uncommitted: they will be "
                    "processed again",
                    left,
                    STOP_WAIT_S,
                )
            await asyncio.wait_for(self.commit_and_end_transactions(), max(1.0, deadline - time.monotonic()))

    def _in_progress(self) -> int:
        """How many messages are in progress, once those no stage is handling are released.

        Faust stops flow before it waits (`tests/unit/test_contracts.py`), and then no stage starts
        on another message. Yet Faust's own count of messages in progress kept some that no stage
        would finish, and a stop waited STOP_WAIT_S for them (measured on Tansu: 4 stops in 6):
        Faust drops the events queued for a stage without acknowledging them, so a message two
        stages consume (settlement and seller history both read payouts-approved) stayed in
        progress once the other stage was done with it; so did one whose delivery to a full queue
        was cut short, and the events a stage had taken for its next batch (`StreamEngine.clear`
        drops them). Released, they are fetched again."""
        if not self.app.flow_control.is_active():
            handled = {id(message) for batch in self._handling.values() for message in batch}
            for message in [m for m in self._unacked_messages if id(m) not in handled]:
                self.release(message)
        return len(self._unacked_messages)

    async def perform_seek(self) -> None:
        """Back to the committed offsets, and each partition the group never committed back to its
        beginning (Faust's seek leaves those where the fetcher stopped: see 4. above)."""
        await super().perform_seek()
        generation, acking = self.app.consumer_generation_id, self.app.topics.acks_enabled_for
        never = [
            tp for tp in self.assignment() if acking(tp.topic) and self._committed_offset.get(tp) is None
        ]
        try:
            starts = await self.earliest_offsets(*never) if never else {}
        except KafkaError as exc:  # aiokafka finds the beginning itself; the commit is not held there
            logger.warning("could not read where %d partition(s) begin (%r): seeking to it", len(never), exc)
            await self._thread.seek_to_beginning(*(TopicPartition(tp.topic, tp.partition) for tp in never))
            starts = {}
        if self.app.consumer_generation_id != generation:
            return  # a rebalance since: the seek of the new assignment does this
        assigned = self.assignment()
        self._start = {tp: offset for tp, offset in starts.items() if tp in assigned and offset >= 0}
        for tp, offset in self._start.items():
            await self.seek(tp, offset)

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's stall check is off: it logged multi-line "Stream has not started processing" ERRORs
        for healthy partitions after five minutes. `/readyz` (`worker.progress`) does that job."""

    def committed_offsets(self) -> dict[TP, int]:
        """The group's committed offset of each assigned partition, as of the assignment or the last
        commit (for `/readyz`: lag counts from it until the first message arrives)."""
        return {tp: offset for tp, offset in self._committed_offset.items() if offset is not None}

    def ack(self, message: Message) -> bool:
        app = self.app
        if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
            return bool(super().ack(message))
        self.release(message)
        return False

    def release(self, message: Message) -> None:
        """Done with `message` without processing it: shutdown does not wait for it, and it is not
        committed (it is fetched again, by this worker or the partition's next owner)."""
        with ack_lock:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust commits over a hole of exactly one message just after the committed offset: it holds
        # back only when `min(acked) - committed > 1`. Here the commit waits for the message at the
        # committed offset; if no stream holds it (a stream skipped it around a rebalance and nothing
        # fetches it again: measured, 1 message in about one restart in five), it is fetched again.
        # A partition the group never committed starts at its beginning (`perform_seek`): Faust
        # commits from the lowest acked offset there, past any message before it that a stream skipped.
        acked, committed = self._acked[tp], self._committed_offset[tp]
        start = committed if committed is not None else self._start.get(tp)
        if acked and start is not None and min(acked) > start:
            if not any(m.tp == tp and m.offset == start for m in self._unacked_messages):
                self._refetch[tp] = start
            return None
        return super()._new_offset(tp)

    async def end_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        """The broker's end offsets (ListOffsets), as Faust's `highwaters` reads them."""
        return await super().highwaters(*partitions)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for tp, offset in self._refetch.items():
            if tp in self.assignment():
                logger.info("%s: offset %d was never processed: fetching from it again", tp, offset)
                await self.seek(tp, offset)
        self._refetch.clear()
        async for tp, message in super().getmany(timeout):
            last = self._read_offset.get(tp)
            if last is not None and message.offset > last + 1:
                logger.debug(  # after a rebalance: the normal way back to the committed offset
                    "%s jumped from %d to %d: fetching the skipped offsets again", tp, last, message.offset
                )
                await self.seek(tp, last + 1)
                self._read_offset[tp] = last  # seek() stores the next offset; the check wants the last
                continue  # delivered again, in order, after the missing ones
            yield tp, message


@dataclass
class _Stops:
    """A partition stream stages stopped on: those still stopped, and where it is fetched from again."""

    stages: set[str]
    fetch_from: int


def _tp(message: Message) -> TP:
    # A message's `tp` is aiokafka's TopicPartition; Faust's pause and resume assert its own TP.
    return TP(message.topic, message.partition)


class TansuConsumer(AtLeastOnceConsumer):
    """The consumer on Tansu 0.6, whose ListOffsets answers the base offset of the last record batch
    instead of the end of the partition."""

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        # Table recovery reads each changelog up to these offsets: on Tansu it stopped before the last
        # batch and the ledger forgot payouts it had settled (17 re-settled after two kills in the crash
        # test). The high watermark in a fetch response is right there: the larger of the two is used.
        ends = dict(await self.end_offsets(*partitions))
        try:
            fetched = await fetched_highwaters(self.app.settings, list(partitions), ends)  # type: ignore[attr-defined]
        except Exception as exc:  # the broker's answer is the best there is
            logger.warning("could not read high watermarks with a fetch (%r): using the end offsets", exc)
            return ends
        return {tp: max(end, fetched.get(tp, end)) for tp, end in ends.items()}


class FlushingProducer(aiokafka_driver.Producer):
    """Faust's producer, whose table writes go to their changelogs as record batches
    (`worker.runtime.changelogs`), and whose `flush` waits for every message handed to it.

    Faust commits offsets after `producer.flush()`. Faust's buffer flush returned once 0.1 s passed
    without a message leaving the buffer, however many were still in it: under load, offsets were
    committed ahead of changelog records that a `kill -9` then lost (10 of 20,000 ledger entries in
    the crash test). Here a flush waits until every table write is on the broker, then for whatever
    else was handed over (each leaves in order), then for aiokafka's own buffer.
    """

    _last: asyncio.Future[Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.changelogs = Changelogs(self)

    def send_soon(self, fut: Any) -> None:
        if fut.message.partition is not None:  # a table write (Faust gives it its partition)
            self.changelogs.add(fut)
            return
        self._last = fut
        super().send_soon(fut)

    async def flush(self) -> None:
        await self.changelogs.written()
        last = self._last
        if last is not None and not last.done():
            await asyncio.shield(last)  # raises if it could not be sent: nothing is committed then
        await super().flush()

    @Service.task
    async def _write_changelogs(self) -> None:
        """The table writes of timers and web views (a stream batch waits for its own)."""
        changelogs = self.changelogs
        while not self.should_stop:
            await changelogs.waiting.wait()
            changelogs.waiting.clear()
            try:
                await changelogs.written()
            except Exception:  # logged with the partition; tried again in a second
                await self.sleep(1.0)
                changelogs.waiting.set()

    async def on_stop(self) -> None:
        try:
            await asyncio.wait_for(self.changelogs.written(), STOP_WAIT_S)
        except Exception as exc:
            logger.error(
                "%d table write(s) could not reach their changelogs before the stop (%r)",
                len(self.changelogs.queued),
                exc,
            )
        await super().on_stop()


class Transport(aiokafka_driver.Transport):
    Consumer = AtLeastOnceConsumer
    Producer = FlushingProducer


class TansuTransport(aiokafka_driver.Transport):
    Consumer = TansuConsumer
    Producer = FlushingProducer
