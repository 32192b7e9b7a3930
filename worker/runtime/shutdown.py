"""Bounded shutdown: whatever the broker does, a worker process ends, and says why in one line.

Faust's stop waits for the broker without a limit: the consumer thread keeps looking for its group
coordinator and the producer keeps retrying its buffer, while aiokafka logs each failed connection
(about 230 lines a second against a refused port). So:

- a stop (Ctrl-C, SIGTERM, a crash) has `STOP_TIMEOUT_S`; past it, one line, and the process exits
  with `EXIT_GAVE_UP`. What it handled since the last commit is handled again at the next start
  (at least once, as after a crash);
- a worker whose embedded broker process died (`give_up`) does not wait at all: with the broker, the
  cluster's data and its group are gone, so there is nothing left to commit or flush.

The timer is a thread of its own: a stopping Faust can block its event loop (mode's `ServiceThread.stop`
waits on a `threading.Event`). Only worker processes arm it (`worker.app._Worker`), never a test that
starts an app in its own process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

#: How long a stop may take. A healthy one takes 2-3 s (commit, flush, leave the group); `make run`'s
#: Ctrl-C must end everything, the embedded broker's own stop included, within 10 s.
STOP_TIMEOUT_S = 7.0
#: The exit code of a worker that gave up on its broker.
EXIT_GAVE_UP = 1

_cleanups: list[Callable[[], None]] = []
_gone: list[Callable[[], bool]] = []
_stopping = threading.Event()
#: The stop signals received: set by the signal handler itself, before the event loop gets to them.
_signalled: list[int] = []


def on_give_up(cleanup: Callable[[], None], gone: Callable[[], bool] = lambda: False) -> None:
    """Run `cleanup` (stop the embedded broker) before a worker that gives up exits; `gone()` tells
    whether that broker has exited already (its clients' errors are not worth a line then)."""
    _cleanups.append(cleanup)
    _gone.append(gone)


def quiet_from_the_signal(*signals: signal.Signals) -> None:
    """From the moment one of `signals` arrives, aiokafka's warnings are held back (`QuietClients`):
    the event loop, which starts the stop, may get to the signal only after the consumer thread has
    logged a few more failed connections. Call after the event loop's handlers are installed (it
    still gets the signal: the wakeup fd is written before any Python handler runs)."""
    for number in signals:
        previous = signal.getsignal(number)

        def noted(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            _signalled.append(signum)  # no lock here: a signal handler must not wait
            if callable(previous):
                previous(signum, frame)

        signal.signal(number, noted)
        signal.siginterrupt(number, False)  # as the event loop had it: no EINTR in any thread's calls


def bound_stop(timeout: float = STOP_TIMEOUT_S) -> None:
    """A stop has begun: end the process if it is still running `timeout` seconds from now."""
    if _stopping.is_set():
        return  # a second signal does not extend the limit
    _stopping.set()
    reason = f"the worker did not stop within {timeout:.0f}s: the broker does not answer"
    timer = threading.Timer(timeout, give_up, args=(reason,))
    timer.daemon = True  # a process that stopped in time exits without waiting for it
    timer.start()


def give_up(reason: str) -> None:
    """Log `reason` as the worker's last line, run the cleanups and exit with `EXIT_GAVE_UP` now.

    Nothing is logged after that line: the clients' connection errors and Faust's tracebacks about the
    missing broker would only repeat it.
    """
    logger.error("%s; exiting with code %d (what was not committed is handled again)", reason, EXIT_GAVE_UP)
    logging.disable(logging.CRITICAL)
    for cleanup in _cleanups:
        with contextlib.suppress(Exception):
            cleanup()
    for stream in (*(getattr(h, "stream", None) for h in logging.getLogger().handlers), sys.__stdout__):
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]
    os._exit(EXIT_GAVE_UP)


class QuietClients(logging.Filter):
    """Keeps the flood out of the log: aiokafka's warnings and errors while the worker stops (against a
    broker that is gone, hundreds of failed connections a second), and every warning and error but
    `give_up`'s once the embedded broker has exited (the stages' failed sends and commits included):
    they say no more than that one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name == __name__:
            return True
        if any(gone() for gone in _gone):
            return False
        stopping = _stopping.is_set() or bool(_signalled)
        return not (stopping and record.name.startswith("aiokafka"))
