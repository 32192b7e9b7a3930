"""Partitions stopped at a message whose processing failed (`PROCESSING_ERRORS=stop`), until skipped.

The stage's engine pauses the partition where the message is, neither acknowledging nor committing it;
the other partitions keep flowing. `/readyz` names each stopped partition, and `python -m worker skip
TOPIC PARTITION OFFSET --reason ...` (`POST /partitions/{topic}/{partition}/skip`) dead-letters the
message and lets the engine move past it.
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
    """The stopped partitions of this worker, by (topic, partition)."""

    def __init__(self) -> None:
        self._halts: dict[tuple[str, int], Halt] = {}

    def __contains__(self, tp: tuple[str, int]) -> bool:
        return (tp[0], tp[1]) in self._halts

    def add(self, halt: Halt) -> None:
        """Note a partition stopped at a message."""
        self._halts[(halt.message.topic, halt.message.partition)] = halt

    def drop(self, tps: object) -> None:
        """Forget the partitions in `tps` (revoked: whoever owns them next meets the message again)."""
        for tp in list(tps):  # type: ignore[call-overload]
            self._halts.pop((tp[0], tp[1]), None)

    def describe(self) -> list[dict[str, Any]]:
        """Every stopped partition, for `/readyz`."""
        return [halt.describe() for _, halt in sorted(self._halts.items())]

    async def skip(
        self, topic: str, partition: int, offset: int, *, reason: str, by: str, publisher: Publisher
    ) -> Halt:
        """Dead-letter the message a partition stopped at, and let its stage move past it.

        LookupError when this worker has no such stopped partition; ValueError when it stopped at
        another offset (the operator must name the message they mean to skip).
        """
        halt = self._halts.get((topic, partition))
        if halt is None:
            raise LookupError(f"{topic}[{partition}] is not stopped on this worker")
        message = halt.message
        if message.offset != offset:
            raise ValueError(f"{topic}[{partition}] is stopped at offset {message.offset}, not {offset}")
        del self._halts[(topic, partition)]  # one skip at a time: a second one finds nothing
        try:
            detail = f"stage {halt.stage}: {halt.error}; skipped by {by}: {reason}"
            error = InvalidRecord(Reason.PROCESSING_ERROR, detail)
            origin = Origin.of_message(message)
            span = trace.child(trace.of_headers(message.headers))  # the skip is a hop of the message's trace
            key, value = message.key, message.value
            await publisher.dead_letter(origin, error, key=key, value=value, headers=span.header())
            await halt.resume()
        except BaseException:
            self._halts[(topic, partition)] = halt
            raise
        return halt
