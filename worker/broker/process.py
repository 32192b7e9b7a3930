"""An embedded broker as a child process: started, waited for, watched and stopped the same way for
every broker binary.

The broker runs in a session (and process group) of its own, so that a terminal's Ctrl-C, which goes to
the whole foreground process group, reaches the worker and not the broker: the worker shuts down
against a live broker and stops it afterwards. It still dies with its parent (PR_SET_PDEATHSIG), so a
`kill -9` of the worker does not leave a broker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from worker.broker.probe import HOST, answers_metadata, ensure_port_free
from worker.errors import BrokerError

logger = logging.getLogger(__name__)


class BrokerProcess:
    """A broker on 127.0.0.1:`port`, started and stopped with this object (a context manager).

    Subclasses give the command line; everything else (session, log file, readiness, stop) is here.
    """

    #: The broker's name in `EMBEDDED_BROKER`, and as a person knows it.
    name: ClassVar[str] = "broker"
    label: ClassVar[str] = "broker"

    def __init__(self, binary: Path, port: int, log_path: Path | None = None) -> None:
        self.binary = binary
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"{HOST}:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts the broker on `self.port`."""
        raise NotImplementedError

    def answers(self) -> bool:
        """True once the broker answers clients."""
        return answers_metadata(HOST, self.port)

    def start(self, timeout: float = 20.0) -> BrokerProcess:
        """Start the broker and return once it answers."""
        ensure_port_free(self.port)
        self._stopping.clear()
        log = self._open_log()
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,  # its warnings (noida-db's GLIBC_2.39 on Debian 12) stay off the console
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        finally:
            os.close(log)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        logger.info("embedded %s broker ready on %s (pid %s)", self.name, self.bootstrap_servers, self.pid)
        return self

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM to its process group); kill it if it is not gone within `timeout`."""
        self._stopping.set()
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                pass
        _signal_group(process.pid, signal.SIGKILL)  # what it started, too
        process.wait()

    def exited(self) -> bool:
        """True when the broker process has ended (without reaping it: `stop()` does that)."""
        process = self.process
        if process is None:
            return True
        try:
            ended = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:  # reaped already
            return True
        return ended or _exiting(process.pid)

    def watch(self, on_exit: Callable[[str], None]) -> None:
        """Call `on_exit(how)` from a thread of its own if the broker exits without `stop()`."""
        process = self.process
        assert process is not None, "start the broker first"
        threading.Thread(
            target=self._watch, args=(process.pid, on_exit), name=f"{self.name}-watch", daemon=True
        ).start()

    def _watch(self, pid: int, on_exit: Callable[[str], None]) -> None:
        try:
            # WNOWAIT: notice the exit without reaping, so that stop() still reaps it.
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:  # reaped already: stop() got there first
            return
        if info is not None and not self._stopping.is_set():
            on_exit(_describe(info))

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _open_log(self) -> int:
        if self.log_path is None:
            return os.open(os.devnull, os.O_WRONLY)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"the embedded {self.name} broker exited with code {self.process.returncode} at "
                    "start-up" + (f"; see {self.log_path}" if self.log_path else "")
                )
            if self.answers():
                return
            time.sleep(0.05)
        raise BrokerError(
            f"the embedded {self.name} broker did not answer on {self.bootstrap_servers} in {timeout}s"
        )


#: Linux's flag of a process on its way out (`PF_EXITING`), in field 9 of /proc/<pid>/stat.
_PF_EXITING = 0x4


def _exiting(pid: int) -> bool:
    """True while `pid` is on its way out: a killed process closes its sockets (its clients' errors
    start) before it has ended, so `waitid` alone said "running" to the first of those errors."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc, or gone already
        return False
    return bool(int(stat.rsplit(")", 1)[1].split()[6]) & _PF_EXITING)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _describe(info: os.waitid_result) -> str:
    if info.si_code == os.CLD_EXITED:
        return f"exited with code {info.si_status}"
    return f"was killed by {signal.Signals(info.si_status).name}"


def _die_with_parent(parent: int) -> Callable[[], None]:
    def arm() -> None:
        # Linux: the broker gets SIGTERM when the process that started it dies, even by SIGKILL, so no
        # broker outlives its worker or test session. If the parent died before this ran, go now.
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm
