"""Faust's fetch loop, handing each fetched record to the stream stages without four futures per record.

Faust's consumer delivers every record it fetched to its channels through `Service.wait_first`: a task
for the delivery, and three more futures (the flow's suspension, the consumer's stop and crash) that
are cancelled again, so each record costs several turns of the event loop. On a worker busy with
other stages that capped what reached the stream stages at about 1,100 records a second, whatever they
did: settlement took batches of 12 events and waited for the next most of the time (docs/performance.md).

Here a record is handed to its channels directly when that cannot wait: flow on, no channel of its
partition full, Faust's producer buffer not over its mark. Otherwise it goes the way Faust sends it, so a
stop, a hand-over or a full stage interrupts a delivery as before. Everything else is Faust's loop: the
offsets it has read, the holes it records, the commit every `broker_commit_every` acknowledgements, and
a turn for the rest of the event loop every `YIELD_EVERY` records.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

#: Records handed over between two turns of the event loop for the other stages: Faust's loop yields
#: every 100 (the hot stages' fetch answers wait meanwhile).
YIELD_EVERY = 20


class FetchLoop(aiokafka_driver.Consumer):
    """Faust's consumer with the fetch loop above (`_drain_messages` is what Faust's `Fetcher` runs)."""

    async def _drain_messages(self, fetcher: Any) -> None:
        deliver, read = self.callback, self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        try:
            while not (self.should_stop or fetcher.should_stop):
                await asyncio.sleep(0)  # as Faust's: a fetch that returns at once still lets others run
                if self.should_stop:
                    break
                async for tp, message in self.getmany(timeout=1.0):
                    since_yield += 1
                    if since_yield >= YIELD_EVERY:
                        since_yield = 0
                        await asyncio.sleep(0)
                    offset, last = message.offset, read.get(tp)
                    if last is not None and offset < last:
                        continue  # delivered already (Faust drops it too)
                    if last and offset - last > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, last + 1, offset)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if self._can_hand_over(tp):
                        await deliver(message)  # does not wait: nothing is full or held
                    else:
                        await self.wait_first(deliver(message), self.suspend_flow.wait())
                    read[tp] = offset
        except self.consumer_stopped_errors:
            if not self.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.app.should_stop:
                raise

    def _can_hand_over(self, tp: TP) -> bool:
        """Whether Faust's delivery of a record of `tp` returns without waiting: it waits for flow
        control, for its producer buffer over its mark, and for a full channel."""
        if not self.app.flow_control.is_active() or self.suspend_flow.is_set():
            return False
        buffer = self.app.producer.buffer
        if buffer.size > buffer.max_messages:
            return False
        return not any(channel.queue.full() for channel in self.app.topics._tp_index.get(tp, ()))  # type: ignore[attr-defined]
