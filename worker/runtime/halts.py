"""Partitions stopped at a message whose processing failed (`PROCESSING_ERRORS=stop`), until skipped.

The stage's engine pauses the partition where the message is, neither acknowledging nor committing it;
the other partitions keep flowing. Each stage stops on its own: another stage of the same topic goes on
with what it has of the partition. `/readyz` names each stopped partition and its stage, and `python -m
worker skip TOPIC PARTITION OFFSET --reason ...` (`POST /partitions/{topic}/{partition}/skip`)
dead-letters the message once and lets every stage stopped at it move past it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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

    Stream stages share one consumer: a partition one of them stopped at is paused for all, yet each
    other stage goes on with what it had received of it, and meets the message itself (and may stop
    there too). One skip moves every stage stopped at the message past it.
    """

    def __init__(self) -> None:
        self._halts: dict[tuple[str, str, int], Halt] = {}

    def stopped(self, stage: str, tp: tuple[str, int]) -> bool:
        """True while `stage` is stopped on partition `tp`."""
        return (stage, tp[0], tp[1]) in self._halts

    def add(self, halt: Halt) -> None:
        """Note a partition stopped at a message by a stage."""
        self._halts[(halt.stage, halt.message.topic, halt.message.partition)] = halt

    def drop(self, tps: object) -> None:
        """Forget the partitions in `tps` (revoked: whoever owns them next meets the message again)."""
        revoked = {(tp[0], tp[1]) for tp in tps}  # type: ignore[attr-defined]
        for key in [key for key in self._halts if key[1:] in revoked]:
            del self._halts[key]

    def describe(self) -> list[dict[str, Any]]:
        """Every stopped partition, by stage, for `/readyz`."""
        by_partition = sorted(self._halts.items(), key=lambda item: (item[0][1:], item[0][0]))
        return [halt.describe() for _, halt in by_partition]

    async def skip(
        self, topic: str, partition: int, offset: int, *, reason: str, by: str, publisher: Publisher
    ) -> list[Halt]:
        """Dead-letter the message a partition stopped at (once, naming every stage stopped at it), and
        let those stages move past it.

        LookupError when this worker has no such stopped partition; ValueError when it stopped at
        another offset (the operator must name the message they mean to skip).
        """
        on = {key: halt for key, halt in self._halts.items() if key[1:] == (topic, partition)}
        if not on:
            raise LookupError(f"{topic}[{partition}] is not stopped on this worker")
        at = {key: halt for key, halt in on.items() if halt.message.offset == offset}
        if not at:
            offsets = ", ".join(sorted({str(halt.message.offset) for halt in on.values()}))
            raise ValueError(f"{topic}[{partition}] is stopped at offset {offsets}, not {offset}")
        for key in at:
            del self._halts[key]  # one skip at a time: a second one finds nothing
        waiting = dict(sorted(at.items()))
        halts = list(waiting.values())
        try:
            await _dead_letter(halts, f"skipped by {by}: {reason}", publisher)
            for key, halt in list(waiting.items()):  # each stage acknowledges its own copy of the message
                await halt.resume()
                del waiting[key]
        except BaseException:
            self._halts.update(waiting)
            raise
        return halts


async def _dead_letter(halts: list[Halt], skipped: str, publisher: Publisher) -> None:
    """The one dead letter of a skipped message, with each stage's error."""
    message = halts[0].message
    errors = "; ".join(f"stage {halt.stage}: {halt.error}" for halt in halts)
    error = InvalidRecord(Reason.PROCESSING_ERROR, f"{errors}; {skipped}")
    origin = Origin.of_message(message)
    span = trace.child(trace.of_headers(message.headers))  # the skip is a hop of the message's trace
    await publisher.dead_letter(origin, error, key=message.key, value=message.value, headers=span.header())
