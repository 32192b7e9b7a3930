"""The counts the runtime keeps about its stages, read by `/stats` and `/metrics` alike."""

from __future__ import annotations

from collections import Counter


class Observer:
    """What the stages did, counted once, where both `/stats` and `/metrics` read it."""

    def __init__(self) -> None:
        #: Exceptions that escaped a stage's handler, per stage (see `worker.runtime.stage`).
        self.processing_errors: Counter[str] = Counter()

    def processing_error(self, stage: str) -> None:
        """A handler of `stage` raised something other than `InvalidRecord`."""
        self.processing_errors[stage] += 1
