"""Worker processes for tests: started as a user starts them, read over HTTP, stopped or killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).parents[1]


def spawn(
    args: list[str], env: dict[str, str], cwd: Path, output: Path | None = None, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start `args` with this checkout importable and no KAFKA_* from the caller.

    stdout and stderr go to `output` if given (a chatty process would fill a pipe nobody reads, and
    block), else to a pipe for `communicate()`. `new_session`: in a session and process group of its
    own, as a terminal starts a foreground job (`os.killpg` then does what Ctrl-C does), with every
    signal unblocked and SIGINT at its default, as a shell starts it. A child inherits an ignored SIGINT:
    `make run` then ignores the Ctrl-C, its worker stops, and make exits 0 (CI's failure once; reproduced
    by ignoring SIGINT before the spawn. What ignored it in CI's pytest worker is not found).
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "STOREFRONT_"))}
    base["PYTHONPATH"] = str(ROOT)
    with open(output or os.devnull, "ab") as sink:  # a restart adds to what the process wrote before
        return subprocess.Popen(
            args,
            env={**base, **env},
            cwd=cwd,
            stdout=sink if output else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
            preexec_fn=_as_a_shell_starts_it if new_session else None,
        )


def _as_a_shell_starts_it() -> None:
    """In the child, before exec: no signal blocked, SIGINT handled by default."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET http://127.0.0.1:port/path: the status and the body, for any status."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def poll_json(
    port: int, path: str, ready: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """GET `path` until its JSON satisfies `ready`; fail after `timeout` seconds."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = orjson.loads(get(port, path)[1])
            if ready(last):
                return last
        except (OSError, orjson.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} on {port} not ready in {timeout}s; last: {last}")


def stats(port: int) -> dict[str, Any] | None:
    """A worker's /stats, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=2) as response:
            return orjson.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def poll_stats(port: int, ready: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    """Poll /stats until `ready(stats)` holds; fail after `timeout` seconds."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = stats(port)
        if last is not None and ready(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"/stats on {port} not ready in {timeout}s; last: {last}")


class Worker:
    """One `python -m worker` process of a test, restartable with the same settings."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.env, self.cwd, self.log = env, cwd, log
        self.port = int(env["WEB_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.process = spawn([sys.executable, "-m", "worker"], self.env, self.cwd, self.log)
        return self

    def kill(self) -> None:
        """kill -9: no flush, no commit, no goodbye to the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait: the worker commits, flushes and leaves the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def tail(self, lines: int = 60) -> str:
        """The end of this worker's log, for a failure's message."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def ensure_gone(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
