"""Partitions stopped at a message whose processing failed (`PROCESSING_ERRORS=stop`), until skipped.

The stage's engine pauses the partition where the message is, neither acknowledging nor committing it;
the other partitions keep flowing. Each stage stops on its own: another stage of the same topic goes on
with what it has of the partition. `/readyz` names each stopped partition and its stage, and `python -m
worker skip TOPIC PARTITION OFFSET --reason ...` (`POST /partitions/{topic}/{partition}/skip`)
dead-letters the message and lets every stage stopped at it move past it. A stream stage that meets
a skipped message again goes past it; one that fails on it after the skip (it had not reached it)
dead-letters it with its own error, without stopping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.errors import InvalidRecord
from worker.reasons import Reason
from worker.runtime import trace
from worker.runtime.deadletters import Origin
from worker.runtime.outbox import Consumed
from worker.runtime.publish import Publisher


@dataclass(frozen=True)
class Halt:
    """A partition stopped at `message` by stage `stage`."""

    stage: str
    message: Consumed
    error: str
    since: datetime
    #: The engine's way on: acknowledge the message (its dead letter is on the broker) and fetch on.
    resume: Callable[[], Awaitable[None]]

    def describe(self) -> dict[str, Any]:
        """What `/readyz` says of it."""
        message = self.message
        return {
            "stage": self.stage,
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "error": self.error,
            "since": self.since.isoformat(),
        }


class Halts:
    """The stopped partitions of this worker, by stage: stages that consume the same topic stop apart.

    Stream stages share one consumer: a partition is paused while any of them is stopped on it, yet each
    other stage goes on with what it had received of it, and meets the message itself (and may stop there
    too). One skip moves every stage stopped at the message past it; stages stopped at other messages of
    the partition stay stopped, and the partition stays paused until the last of them is skipped.
    """

    def __init__(self) -> None:
        self._stops: dict[tuple[str, int], dict[str, Halt]] = {}  # by partition, then by stage
        self._skipping: set[tuple[str, int]] = set()

    def stopped(self, stage: str, tp: tuple[str, int]) -> bool:
        """True while `stage` is stopped on partition `tp`."""
        return stage in self._stops.get((tp[0], tp[1]), {})

    def add(self, halt: Halt) -> None:
        """Note a partition stopped at a message by a stage."""
        self._stops.setdefault((halt.message.topic, halt.message.partition), {})[halt.stage] = halt

    def drop(self, tps: Iterable[tuple[str, int]], stages: Collection[str]) -> None:
        """Forget the stops of `stages` on the partitions in `tps` (revoked from the consumer of those
        stages: whoever owns them next meets the message again)."""
        for tp in tps:
            for stage in stages:
                self._forget((tp[0], tp[1]), stage)

    def describe(self) -> list[dict[str, Any]]:
        """Every stopped partition, by stage, for `/readyz`."""
        by_partition = sorted(self._stops.items())
        return [stops[stage].describe() for _, stops in by_partition for stage in sorted(stops)]

    async def skip(
        self, topic: str, partition: int, offset: int, *, reason: str, by: str, publisher: Publisher
    ) -> list[Halt]:
        """Dead-letter the message a partition stopped at (once, naming every stage stopped at it), and
        let those stages move past it.

        LookupError when this worker has no such stopped partition; ValueError when it stopped at
        another offset (the operator must name the message they mean to skip), or a skip of it is under
        way. A stage whose way on fails stays stopped: a second skip of it acknowledges nothing twice.
        """
        tp = (topic, partition)
        halts = self._stopped_at(tp, offset)
        self._skipping.add(tp)
        try:
            await _dead_letter(halts, f"skipped by {by}: {reason}", publisher)
            for halt in halts:
                await self._resume(tp, halt)
        finally:
            self._skipping.discard(tp)
        return halts

    def _stopped_at(self, tp: tuple[str, int], offset: int) -> list[Halt]:
        """The stops of partition `tp` at `offset`, by stage (see `skip` for the errors)."""
        stops = self._stops.get(tp)
        if not stops:
            raise LookupError(f"{tp[0]}[{tp[1]}] is not stopped on this worker")
        if tp in self._skipping:
            raise ValueError(f"{tp[0]}[{tp[1]}] is being skipped already")
        at = [stops[stage] for stage in sorted(stops) if stops[stage].message.offset == offset]
        if not at:
            offsets = ", ".join(str(o) for o in sorted({halt.message.offset for halt in stops.values()}))
            raise ValueError(f"{tp[0]}[{tp[1]}] is stopped at offset {offsets}, not {offset}")
        return at

    async def _resume(self, tp: tuple[str, int], halt: Halt) -> None:
        """`halt`'s stage goes past its message, unless its partition was revoked meanwhile (`drop`)."""
        if self._stops.get(tp, {}).get(halt.stage) is halt:
            await halt.resume()
            self._forget(tp, halt.stage)

    def _forget(self, tp: tuple[str, int], stage: str) -> None:
        stops = self._stops.get(tp, {})
        stops.pop(stage, None)
        if not stops:
            self._stops.pop(tp, None)


async def _dead_letter(halts: list[Halt], skipped: str, publisher: Publisher) -> None:
    """The one dead letter of a skipped message, with each stage's error."""
    message = halts[0].message
    errors = "; ".join(f"stage {halt.stage}: {halt.error}" for halt in halts)
    error = InvalidRecord(Reason.PROCESSING_ERROR, f"{errors}; {skipped}")
    origin = Origin.of_message(message)
    span = trace.child(trace.of_headers(message.headers))  # the skip is a hop of the message's trace
    await publisher.dead_letter(origin, error, key=message.key, value=message.value, headers=span.header())
