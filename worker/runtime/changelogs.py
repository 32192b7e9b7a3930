"""Table writes to their changelogs: record batches, in the order they were made, never dropped.

Faust hands each table write to its producer buffer, which sends one changelog record at a time, each
through a task switch and the client's per-message send: a settling worker spent a third of its time
there. Here every table write Faust makes (`FlushingProducer.send_soon`) joins one queue, in order;
`Changelogs.written` sends what is queued as aiokafka record batches, one per changelog partition
(more when full), waits for the broker, and resolves each write as Faust's producer does (its sensors
count it, its callback keeps a RocksDB partition's persisted offset).

One send at a time, confirmed before the next, so a changelog holds its writes in the order they were
made, whoever made them (a stream batch, a timer, a web view). A send that fails leaves its writes
queued, in order, for the next one: nothing a table holds is dropped on its way to the changelog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import ProducerT
from faust.types.tuples import FutureMessage

from worker.runtime.outbox import record_batches

logger = logging.getLogger(__name__)


class Changelogs:
    """The table writes not yet on the broker, and the one way they get there."""

    def __init__(self, producer: ProducerT) -> None:
        self.producer = producer  #: Faust's producer: its client sends, its sensors count
        #: The writes not confirmed yet, each with its number (in the order made), oldest first.
        self.queued: list[tuple[int, FutureMessage]] = []
        self.made = 0  #: table writes made since start: the number of the last one
        self._sending = asyncio.Lock()
        self.waiting = asyncio.Event()  #: set when a write joins the queue

    def add(self, write: FutureMessage) -> None:
        """Queue a table write (its key, value and partition are final)."""
        self.made += 1
        self.queued.append((self.made, write))
        self.waiting.set()

    async def written(self) -> None:
        """Return once every table write made so far is on the broker; raise if a send failed (its
        writes stay queued for the next call)."""
        target = self.made
        async with self._sending:  # no send runs meanwhile: what is not confirmed is queued
            while self.queued and self.queued[0][0] <= target:
                await self._send()

    async def _send(self) -> None:
        queued, self.queued = self.queued, []
        writes = [write for _, write in queued]
        unsent, failures = writes, []
        try:
            client: AIOKafkaProducer = self.producer._ensure_producer()  # type: ignore[attr-defined]
            by_partition: dict[tuple[str, int], list[FutureMessage]] = {}
            for write in writes:
                where = (write.message.channel.get_topic_name(), write.message.partition)
                by_partition.setdefault(where, []).append(write)  # type: ignore[arg-type]
            results = await asyncio.gather(
                *(self._send_partition(client, *where, group) for where, group in by_partition.items())
            )
            unsent = [write for left, _ in results for write in left]
            failures = [failure for _, failure in results if failure is not None]
        finally:  # what is not confirmed goes back to the head of the queue, in the order it was made
            left = {id(write) for write in unsent}
            self.queued = [entry for entry in queued if id(entry[1]) in left] + self.queued
        if failures:
            raise failures[0]

    async def _send_partition(
        self, client: AIOKafkaProducer, topic: str, partition: int, writes: list[FutureMessage]
    ) -> tuple[list[FutureMessage], Exception | None]:
        """Send one partition's writes as record batches, in order: what is not confirmed (from the
        first batch that failed on, since a later one may hold newer values of its keys) and why."""
        sensors, states, sent = self.producer.transport.app.sensors, [], 0
        try:
            acks = []
            for chunk, builder in record_batches(client, writes, _record):
                for write in chunk:
                    pending = write.message
                    size = len(pending.key or b""), len(pending.value or b"")
                    states.append(
                        sensors.on_send_initiated(
                            self.producer, topic, message=pending, keysize=size[0], valsize=size[1]
                        )
                    )
                acks.append((chunk, await client.send_batch(builder, topic, partition=partition)))
            for chunk, ack in acks:
                first = await ack
                for index, write in enumerate(chunk):
                    metadata = first._replace(offset=first.offset + index)
                    sensors.on_send_completed(self.producer, states[sent + index], metadata)
                    _resolve(write, metadata)
                sent += len(chunk)
        except Exception as exc:
            left = len(writes) - sent
            logger.warning(
                "%d table write(s) to %s[%d] not on the broker yet: %r", left, topic, partition, exc
            )
            for state in states[sent:]:
                sensors.on_send_error(self.producer, exc, state)
            return writes[sent:], exc
        return [], None


def _record(write: FutureMessage) -> tuple[bytes | None, bytes | None, Any]:
    pending = write.message
    return pending.key, pending.value, _headers(pending.headers)


def _headers(headers: Any) -> list[tuple[str, bytes]] | None:
    items: Iterable[tuple[str, bytes]] = headers.items() if isinstance(headers, Mapping) else headers or ()
    return list(items) or None


def _resolve(write: FutureMessage, metadata: Any) -> None:
    """As Faust's producer does once the broker has a message: its result, then its callback."""
    if write.done():  # sent again after a send was cut short: the changelog has it twice, harmlessly
        return
    write.set_result(metadata)
    callback = write.message.callback
    if callback is not None:
        try:
            callback(write)
        except Exception:  # one table's callback does not keep the others' writes unresolved
            logger.exception("callback of a table write to %s failed", write.message.channel)
