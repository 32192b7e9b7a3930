"""Memory handed back: the heap's free pages go back to the system every MEMORY_TRIM_INTERVAL_S.

glibc's malloc keeps what the worker frees (fetch responses, encoded batches, the tables' buffers) in its
heaps for the next allocation, and gives back only a free block at the very top of a heap. So a
worker's resident memory stayed at the peak of a burst, and grew from there while it settled the
backlog: peak RSS 219-226 MB over 100,000 orders, 195-207 MB with a trim every second
(docs/performance.md). `malloc_trim(0)` hands every free page back. It runs on a thread of the event
loop's executor, without the GIL: about a millisecond a call, up to 100 ms on a large heap. The event
loop goes on meanwhile, and waits only if it needs memory from the heap being trimmed while it is (Python's
small objects come from its own allocator, not from malloc's heap). Only glibc has it; elsewhere (musl,
macOS) nothing is trimmed and `/stats` says so.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.runtime.app import PipelineApp
from worker.runtime.observer import Observer

logger = logging.getLogger(__name__)

MB = 1024 * 1024


def glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


def resident_bytes() -> int:
    """This process's resident memory now, or 0 where that is unknown."""
    return _status().get("VmRSS", 0) * 1024


def _status() -> dict[str, int]:
    """The kB figures of /proc/self/status (Linux; empty elsewhere)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split() for line in lines)
    return {f[0].rstrip(":"): int(f[1]) for f in fields if len(f) == 3 and f[2] == "kB"}


@dataclass
class Trimmer:
    """Hands the heap's free pages back, and counts what that gave back."""

    trim: Callable[[int], int] | None
    trims: int = 0
    returned: int = 0  #: bytes resident before a trim and not after, summed

    def __call__(self) -> None:
        """One trim (blocking: run it off the event loop)."""
        if self.trim is None:
            return
        before = resident_bytes()
        self.trim(0)
        self.trims += 1
        self.returned += max(0, before - resident_bytes())  # other threads allocate meanwhile

    def summary(self) -> dict[str, Any]:
        """The `/stats` section: resident memory now and at its peak, and what trimming gave back."""
        status = _status()
        return {
            "rss_mb": round(status.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mb": round(status.get("VmHWM", 0) / 1024, 1),
            "trimmed": self.trim is not None,
            "trims": self.trims,
            "returned_mb": round(self.returned / MB, 1),
        }


def register(app: PipelineApp, observer: Observer, interval_s: float) -> Trimmer:
    """Trim every `interval_s` seconds (never when 0), and show it on `/stats` and `/metrics`."""
    trimmer = Trimmer(glibc_malloc_trim() if interval_s > 0 else None)
    observer.section("memory", trimmer.summary)
    observer.reading(
        "streamline_memory_returned_bytes",
        "Resident memory handed back to the system by trimming the heap",
        lambda: float(trimmer.returned),
        kind="counter",
    )
    if trimmer.trim is None:
        if interval_s > 0:
            logger.info("the C library has no malloc_trim (glibc's): the heap is not trimmed")
        return trimmer

    @app.timer(interval_s, name="memory-trim")
    async def trim() -> None:
        await asyncio.get_running_loop().run_in_executor(None, trimmer)

    return trimmer
