"""Is every agent making progress? Lag per partition and stall detection, for `/readyz` and `/metrics`.

A Faust sensor notes, per partition, the first message an agent took since the assignment and the
last one every stream finished. Lag is the high watermark minus the next offset to finish. The high
watermark is the larger of two readings: the consumer's fetch responses (aiokafka `highwater`, exact,
but frozen when the fetcher stops) and the broker's end offsets (ListOffsets, every few seconds; they
keep moving when the fetcher stops, though Tansu 0.6 answers the base offset of the last batch, which
under-counts). An agent is stalled when one of its partitions has had lag and no finished message for
`STALL_TIMEOUT_S` seconds. A partition none of whose messages an agent has taken since the assignment
counts as caught up only if the group had no committed offset for it; otherwise lag counts from
that committed offset, so a consumer that fetches nothing at all after an assignment is caught too.

Batch agents (`worker/batches.py`) have their own consumers: each notes its partitions' progress
itself, per batch, and is watched here the same way, with its own consumer's high watermarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from faust import Sensor
from faust.types import TP, AppT, Message, TopicT

from worker.runtime.halts import Halts

#: How often the broker is asked for end offsets (one ListOffsets request for all agent partitions).
END_OFFSETS_EVERY_S = 5.0


@dataclass
class PartitionProgress:
    """What one partition's agent has done since the assignment."""

    moved_at: float  #: monotonic time of the last sign of progress: a finished message, or no lag
    first_in: int | None = None  #: offset of the first message an agent took
    last_out: int | None = None  #: offset of the last message every stream finished
    lag: int | None = None  #: at the last check; None while the high watermark is unknown
    start: int | None = None  #: the group's committed offset at the assignment: where it must begin

    def next_offset(self) -> int | None:
        """The offset the agent must finish next, if known."""
        if self.last_out is not None:
            return self.last_out + 1
        return self.first_in if self.first_in is not None else self.start

    def observe(self, highwater: int | None, now: float) -> None:
        """Update the lag from the high watermark; no lag counts as progress."""
        after = self.next_offset()
        if highwater is None:
            self.lag = None
        else:
            self.lag = max(0, highwater - after) if after is not None else 0
        if not self.lag:
            self.moved_at = now

    def stalled(self, now: float, window: float) -> bool:
        """Lag, and nothing finished for `window` seconds."""
        return bool(self.lag) and now - self.moved_at > window


class ProgressSensor(Sensor):
    """Notes, per partition, the messages agents take and finish (two dict updates per message)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.partitions: dict[TP, PartitionProgress] = {}

    def get(self, tp: TP) -> PartitionProgress:
        """The progress of `tp`, created on first sight."""
        found = self.partitions.get(tp)
        if found is None:
            found = self.partitions[tp] = PartitionProgress(moved_at=time.monotonic())
        return found

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        """An agent takes a message."""
        part = self.get(tp)
        if part.first_in is None:
            part.first_in = offset

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        """Every stream finished a message."""
        part = self.get(tp)
        part.last_out, part.moved_at = offset, time.monotonic()

    def on_rebalance_start(self, app: AppT) -> dict[str, Any]:
        """A new assignment: positions may move back, so start afresh."""
        self.partitions.clear()
        return super().on_rebalance_start(app)


class Watched(Protocol):
    """A consumer of its own whose progress is tracked too: a batch agent (`worker/batches.py`)."""

    name: str
    #: Per assigned partition, kept by the consumer as it handles records.
    progress: dict[TP, PartitionProgress]

    def assigned(self) -> Sequence[TP]:
        """The partitions assigned to it now."""

    def highwater(self, tp: TP) -> int | None:
        """The high watermark of `tp` in its last fetch response, if any."""

    async def end_offsets(self, partitions: Sequence[TP]) -> dict[TP, int]:
        """The broker's end offsets (ListOffsets)."""


@dataclass(frozen=True)
class _Tracked:
    """An assigned partition of an agent, its progress, and its consumer's latest high watermark."""

    tp: TP
    agent: str
    part: PartitionProgress
    fetched: int | None


class Progress:
    """Lag and readiness of the app's agents: checked every second by a timer, and when asked."""

    def __init__(self, app: AppT, stall_timeout_s: float, halts: Halts | None = None) -> None:
        self.app, self.window = app, stall_timeout_s
        self.halts = halts or Halts()
        self.sensor = ProgressSensor()
        self.watched: list[Watched] = []
        #: The broker's end offsets, from the last `read_end_offsets`.
        self.end_offsets: dict[TP, int] = {}

    def watch(self, consumer: Watched) -> None:
        """Track a batch agent too."""
        self.watched.append(consumer)

    def check(self, now: float) -> list[_Tracked]:
        """Update the lag of every assigned partition an agent consumes; return them."""
        tracked = list(self._tracked(now))
        for entry in tracked:
            known = [value for value in (entry.fetched, self.end_offsets.get(entry.tp)) if value is not None]
            entry.part.observe(max(known) if known else None, now)
        return tracked

    async def read_end_offsets(self, timeout: float) -> None:
        """Ask the broker for the end offsets of the agents' partitions (skipped if it does not answer)."""
        partitions = [tp for tp, _ in self._agent_partitions()]
        if partitions:
            with contextlib.suppress(Exception):  # no answer now is no evidence; the next read may have one
                faust_consumer = self.app.consumer
                read = getattr(faust_consumer, "end_offsets", faust_consumer.highwaters)  # ListOffsets only
                ends = await asyncio.wait_for(read(*partitions), timeout)
                self.end_offsets.update({TP(tp.topic, tp.partition): end for tp, end in ends.items()})
        for consumer in self.watched:
            if assigned := consumer.assigned():
                with contextlib.suppress(Exception):
                    ends = await asyncio.wait_for(consumer.end_offsets(assigned), timeout)
                    self.end_offsets.update({TP(tp.topic, tp.partition): end for tp, end in ends.items()})

    def lags(self) -> dict[TP, int]:
        """The lag of every assigned agent partition whose high watermark is known."""
        tracked = self.check(time.monotonic())
        return {entry.tp: entry.part.lag for entry in tracked if entry.part.lag is not None}

    def readiness(self) -> dict[str, Any]:
        """`/readyz`: assigned, recovered and no stalled agent; with the lag of every partition."""
        app, now = self.app, time.monotonic()
        tracked = self.check(now)
        assigned = app.rebalancing_count > 0 and not app.rebalancing
        recovery = app.tables.recovery  # type: ignore[attr-defined]  # on TableManager, not its type
        recovered = recovery.completed.is_set() and not app.in_recovery
        agents: dict[str, dict[str, Any]] = {}
        stalled: list[str] = []
        for tracked_tp in tracked:
            tp, agent, part = tracked_tp.tp, tracked_tp.agent, tracked_tp.part
            entry = agents.setdefault(agent, {"lag": 0, "partitions": {}})
            entry["partitions"][f"{tp.topic}[{tp.partition}]"] = {
                "lag": part.lag,
                "idle_s": round(now - part.moved_at, 1),
            }
            entry["lag"] += part.lag or 0
            if part.stalled(now, self.window):
                stalled.append(f"{agent} {tp.topic}[{tp.partition}]")
        halted = self.halts.describe()
        return {
            "ready": assigned and recovered and not stalled and not halted,
            "assigned": assigned,
            "recovered": recovered,
            "stalled": stalled,
            "stopped_at_errors": halted,
            "stall_timeout_s": self.window,
            "agents": agents,
        }

    def _tracked(self, now: float) -> Iterator[_Tracked]:
        consumer = self.app.consumer
        committed: dict[TP, int] = getattr(consumer, "committed_offsets", dict)()
        for tp, agent in self._agent_partitions():
            try:
                fetched = consumer.highwater(tp)
            except Exception:  # not assigned (any more), or the consumer is not running yet
                fetched = None
            part = self.sensor.get(tp)
            if part.first_in is None:  # Faust updates it when it seeks after the assignment
                part.start = committed.get(tp)
            yield _Tracked(tp, agent, part, fetched)
        for watched in self.watched:
            for tp in sorted(watched.assigned()):
                part = watched.progress.setdefault(tp, PartitionProgress(moved_at=now))
                yield _Tracked(tp, watched.name, part, watched.highwater(tp))

    def _agent_partitions(self) -> Iterator[tuple[TP, str]]:
        by_topic = {
            topic: agent.name
            for agent in self.app.agents.values()
            if isinstance(agent.channel, TopicT)
            for topic in agent.channel.topics
        }
        try:
            assignment = self.app.consumer.assignment()
        except Exception:  # the consumer is not running yet
            return
        for tp in sorted(assignment):
            if tp.topic in by_topic:
                yield tp, by_topic[tp.topic]


def register(app: AppT, stall_timeout_s: float, halts: Halts, streams: Collection[str]) -> Progress:
    """Track the agents' progress in `app`: a sensor, and a timer that reads the high watermarks.

    `halts` are the partitions stopped at a processing error: the worker is not ready while any is.
    `streams` are the stream stages (Faust's agents), whose stops end when Faust's consumer loses the
    partition.
    """
    progress = Progress(app, stall_timeout_s, halts)
    app.sensors.add(progress.sensor)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_stopped(sender: AppT, revoked: set[TP], **kwargs: Any) -> None:
        # Whoever owns a revoked partition next (Faust resumes every partition it assigns) meets the
        # message again, and stops there again.
        halts.drop(revoked, streams)

    @app.timer(1.0, name="progress-check")
    async def check() -> None:
        progress.check(time.monotonic())

    @app.timer(END_OFFSETS_EVERY_S, name="progress-end-offsets")
    async def read_end_offsets() -> None:
        await progress.read_end_offsets(timeout=END_OFFSETS_EVERY_S)

    return progress
