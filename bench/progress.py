"""Progress on stderr while the bench runs: one updating line on a terminal, a line every 2 s otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Reports `done/total` for the current step, with its rate."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._label, self._started, self._last_line = "", 0.0, 0.0

    def step(self, label: str) -> None:
        """Begin a new step (ends the previous line)."""
        self._end()
        self._label, self._started = label, time.monotonic()
        self._write(f"{label} ...")

    def update(self, done: int, total: int) -> None:
        """The current step has done `done` of `total`."""
        now = time.monotonic()
        if not self.tty and now - self._last_line < 2 and done < total:
            return
        rate = done / (now - self._started) if now > self._started else 0.0
        self._write(f"{self._label}: {done:,}/{total:,} ({rate:,.0f}/s)")

    def note(self, text: str) -> None:
        """A line of its own."""
        self._end()
        print(text, file=sys.stderr, flush=True)

    def _write(self, text: str) -> None:
        self._last_line = time.monotonic()
        if self.tty:
            print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def _end(self) -> None:
        if self.tty and self._label:
            print(file=sys.stderr, flush=True)
        self._label = ""
