"""The worker as a process: start it as a user would, and read its HTTP endpoints."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).parents[1]


def spawn(
    args: list[str], env: dict[str, str], cwd: Path, output: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `args` with this checkout importable and no KAFKA_* from the caller.

    stdout and stderr go to `output` if given (a chatty process would fill a pipe nobody reads, and
    block), else to a pipe for `communicate()`.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "STOREFRONT_"))}
    base["PYTHONPATH"] = str(ROOT)
    with open(output or os.devnull, "wb") as sink:
        return subprocess.Popen(
            args,
            env={**base, **env},
            cwd=cwd,
            stdout=sink if output else subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )


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
