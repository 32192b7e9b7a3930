"""The test commands: `make test` changes nothing on the machine; `.ci/run`, on CI's own machine, installs
what the tests use and runs the integration layer on both embedded brokers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_make_test_installs_nothing_on_the_machine() -> None:
    commands = make("-n", "test", "CHROMIUM=/nowhere/chromium")  # -n: print what it would run
    assert "pytest" in commands
    assert "apt-get" not in commands and "sudo" not in commands  # .venv is the project's, the rest is not


def test_make_test_says_in_one_line_when_the_browser_test_is_skipped() -> None:
    assert make("-s", "chromium-check", "CHROMIUM=/nowhere/chromium").splitlines() == [
        "streamline: no /nowhere/chromium: the dashboard's browser test is skipped (.ci/run installs it)"
    ]
    assert make("-s", "chromium-check", "CHROMIUM=/bin/sh") == ""


def test_ci_installs_chromium_and_kcat_then_tests_on_both_brokers(tmp_path: Path) -> None:
    # Stand-ins for apt-get and make record what CI would run, in order.
    calls = tmp_path / "calls"
    for tool in ("apt-get", "make"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $* EMBEDDED_BROKER=$EMBEDDED_BROKER" >> {calls}\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env.pop("EMBEDDED_BROKER", None)
    subprocess.run([str(ROOT / ".ci" / "run")], env=env, check=True, capture_output=True)

    assert calls.read_text().splitlines() == [
        "apt-get update -qq EMBEDDED_BROKER=",
        "apt-get install -y -qq chromium kcat EMBEDDED_BROKER=",
        "make test EMBEDDED_BROKER=",
        "make test-integration EMBEDDED_BROKER=tansu",
    ]
