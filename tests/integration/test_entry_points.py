"""The worker as a user starts it (`make run`, `python -m worker`, `faust -A worker.main worker`) and stops
it: Ctrl-C as a terminal sends it, to the whole foreground process group; a broker that dies or stops
answering; and nothing left behind, not even a zombie."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.brokers import BROKER, EXTERNAL
from tests.processes import ROOT, free_port, get, poll_stats, spawn
from worker.broker import embedded
from worker.runtime.shutdown import EXIT_GAVE_UP

FAUST = str(Path(sys.executable).with_name("faust"))
COMMANDS = {
    "python -m worker": [sys.executable, "-m", "worker"],
    "faust -A worker.main worker": [FAUST, "-A", "worker.main", "worker", "-l", "info"],
    "make run": ["make", "--no-print-directory", "-C", str(ROOT), "run"],
}
embedded_only = pytest.mark.skipif(bool(EXTERNAL), reason="starts the embedded broker")


def descendants(pid: int) -> list[int]:
    """`pid`'s children, their children, and so on."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def leftovers(pids: list[int], sessions: set[int]) -> list[str]:
    """What is left of `pids` (zombies included), and any process still in one of `sessions`."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
        except OSError:
            continue
        fields = rest.rsplit(")", 1)[1].split()  # state ppid pgrp session ...
        if int(pid) in pids or int(fields[3]) in sessions:
            left.append(f"{pid} {rest[:60]}")
    return left


def flowing(stats: dict[str, Any]) -> bool:
    topics = stats["topics"]
    return topics["payouts-approved"]["produced"] > 0


class Run:
    """One command in a session of its own, as a terminal runs a foreground job."""

    def __init__(self, command: list[str], env: dict[str, str], tmp_path: Path) -> None:
        self.log = tmp_path / "output.log"
        self.web = int(env["WEB_PORT"])
        env = {"DATA_DIR": str(tmp_path / "data"), "TOPIC_PARTITIONS": "2", **env}
        self.started = time.monotonic()
        self.process = spawn(command, env, tmp_path, self.log, new_session=True)
        self.tree: list[int] = []
        self.mark = 0

    def wait_until_flowing(self) -> float:
        poll_stats(self.web, flowing, timeout=90)
        self.tree = [self.process.pid, *descendants(self.process.pid)]
        return time.monotonic() - self.started

    def ctrl_c(self) -> None:
        """SIGINT to the whole process group: what a terminal's Ctrl-C does."""
        self.mark = self.log.stat().st_size
        os.killpg(self.process.pid, signal.SIGINT)

    def output_since_mark(self) -> list[str]:
        return self.log.read_bytes()[self.mark :].decode(errors="replace").splitlines()

    def wait_for_nothing_left(self, timeout: float) -> float:
        """Seconds from the mark until no process of the run is left; fail after `timeout`."""
        asked = time.monotonic()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {timeout}s later: {self.output_since_mark()[-20:]}")
        sessions = {self.process.pid, *self.tree}
        deadline = asked + timeout
        while left := leftovers(self.tree, sessions):
            assert time.monotonic() < deadline, f"left behind: {left}"
            time.sleep(0.05)
        return time.monotonic() - asked

    def ensure_gone(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runs: list[Run] = []

    def start(command: list[str], **env: str) -> Run:
        runs.append(Run(command, {"WEB_PORT": str(free_port()), **env}, tmp_path))
        return runs[-1]

    yield start
    for each in runs:
        each.ensure_gone()


def _text(line: str) -> str:
    """A log line without its time and process id: `[time] [pid] [LEVEL] text`."""
    return line.split("] ", 2)[-1]


def warnings_and_errors(lines: list[str]) -> list[str]:
    return [line for line in lines if "[WARNING]" in line or "[ERROR]" in line or "Traceback" in line]


@embedded_only
@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_stops_the_worker_then_its_broker_within_10s_and_leaves_nothing(run, command: str) -> None:
    started = run(COMMANDS[command], EMBEDDED_BROKER_PORT=str(free_port()))
    first = started.wait_until_flowing()
    assert len(started.tree) >= 2, "the embedded broker should run under the worker"

    started.ctrl_c()
    took = started.wait_for_nothing_left(timeout=10)

    output = started.output_since_mark()
    print(f"\n{command} on {BROKER}: first approved payout {first:.1f}s; Ctrl-C to nothing left {took:.1f}s")
    # The worker stopped first, cleanly, and then stopped the broker (the terminal's signal never reached it).
    ended = "worker stopped (exit code 0)" if command != "faust -A worker.main worker" else "worker stopped"
    assert f"{ended}; embedded {BROKER} broker stopped" in output[-1], output[-5:]
    assert warnings_and_errors(output) == []
    assert not any("GLIBC" in line or "press Ctrl-C" in line for line in output), "the broker's own output"
    if command == "make run":
        # GNU make re-raises a SIGINT it received once its child has exited: the shell sees 130.
        assert started.process.returncode == -signal.SIGINT
    else:
        assert started.process.returncode == 0


@embedded_only
def test_sigterm_to_the_worker_alone_stops_it_then_its_broker(run) -> None:
    started = run(COMMANDS["python -m worker"], EMBEDDED_BROKER_PORT=str(free_port()))
    started.wait_until_flowing()
    started.mark = started.log.stat().st_size
    started.process.send_signal(signal.SIGTERM)  # docker stop, systemd, Kubernetes
    started.wait_for_nothing_left(timeout=10)
    assert started.process.returncode == 0
    assert f"embedded {BROKER} broker stopped" in started.output_since_mark()[-1]


@embedded_only
def test_a_worker_whose_embedded_broker_dies_says_so_in_one_line_and_exits_non_zero(run) -> None:
    started = run(COMMANDS["python -m worker"], EMBEDDED_BROKER_PORT=str(free_port()))
    started.wait_until_flowing()
    broker = started.tree[1]

    started.mark = started.log.stat().st_size
    os.kill(broker, signal.SIGKILL)
    took = started.wait_for_nothing_left(timeout=15)

    print(f"\nbroker killed: the worker gave up after {took:.1f}s")
    assert started.process.returncode == EXIT_GAVE_UP
    lines = warnings_and_errors(started.output_since_mark())
    assert len(lines) == 1 and f"the embedded {BROKER} broker was killed by SIGKILL" in lines[0], lines


@embedded_only
def test_ctrl_c_while_the_embedded_broker_is_frozen_gives_up_in_one_line(run) -> None:
    started = run(COMMANDS["python -m worker"], EMBEDDED_BROKER_PORT=str(free_port()))
    started.wait_until_flowing()
    poll_stats(started.web, flowing, 10)
    before = orders_handed_over(started.web)
    os.kill(started.tree[1], signal.SIGSTOP)  # alive, but answers nothing
    # The storefront goes on: orders the broker never acknowledges, which a stop would have to flush.
    # (/stats counts confirmed messages only; Faust's sensor counts what reached the producer.)
    deadline = time.monotonic() + 10
    while orders_handed_over(started.web) <= before:
        assert time.monotonic() < deadline, "the storefront sent nothing after the broker froze"
        time.sleep(0.2)

    started.ctrl_c()
    took = started.wait_for_nothing_left(timeout=15)

    print(f"\nCtrl-C against a frozen broker: gave up after {took:.1f}s")
    assert started.process.returncode == EXIT_GAVE_UP, started.output_since_mark()[-5:]
    lines = warnings_and_errors(started.output_since_mark())
    assert len(lines) == 1, lines
    [line] = lines
    assert "the worker did not stop within 7s: the broker does not answer" in line


def orders_handed_over(port: int) -> float:
    """Orders handed to the producer so far, confirmed or not, from Faust's sensor on /metrics."""
    status, body = get(port, "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "faust_topic_messages_sent_total" and sample.labels == {
                "topic": "topic.orders"
            }:
                return sample.value
    return 0.0


#: The distinct aiokafka error lines a worker logs in the second after its cluster vanished
#: (connection, metadata, fetch, send, commit, and each consumer group's coordinator: 8 to 12 seen),
#: with room to spare (237 without `Repeats`).
MOST_LINES = 25


def test_ctrl_c_after_an_external_cluster_vanished_gives_up_in_one_line(run, tmp_path: Path) -> None:
    with embedded(BROKER, free_port(), tmp_path / "cluster") as cluster:
        started = run(
            COMMANDS["python -m worker"],
            KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap_servers,
            STOREFRONT_ORDERS_PER_SECOND="20",
            KAFKA_SESSION_TIMEOUT_S="6",
        )
        started.wait_until_flowing()
    time.sleep(1)  # the worker, still running, notices: this is the state Ctrl-C finds it in

    started.ctrl_c()
    took = started.wait_for_nothing_left(timeout=15)

    # Up to the signal (a healthy worker logs no warning; the cluster was gone for a second): each
    # aiokafka error line once (`Repeats`), not about 250 lines a second.
    logged = started.log.read_bytes()[: started.mark].decode(errors="replace")
    before = warnings_and_errors(logged.splitlines())
    print(f"\nCtrl-C with the cluster gone: gave up after {took:.1f}s; {len(before)} lines before it")
    assert started.process.returncode == EXIT_GAVE_UP
    assert 0 < len(before) <= MOST_LINES, f"{len(before)} lines before Ctrl-C: {before[:20]}"
    lines = warnings_and_errors(started.output_since_mark())
    # After it: the one give-up line, and at most a few aiokafka lines not shown before, already on their
    # way when the signal came (Python runs the signal's handler between two bytecodes, in the main
    # thread only, while the client threads go on: CI saw `Unable to update metadata` 2 ms after it).
    # None repeats a line shown before: that would be the flood.
    seen = {_text(line) for line in before}
    assert len(lines) <= 4 and all(_text(line) not in seen for line in lines[:-1]), lines
    assert "the worker did not stop within 7s: the broker does not answer" in lines[-1]


def test_faust_cli_runs_the_same_worker_against_an_external_broker(run, bootstrap, unique) -> None:
    started = run(
        COMMANDS["faust -A worker.main worker"],
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        APP_ID=unique,
        TOPIC_PREFIX=f"{unique}-",
        STOREFRONT_ORDERS_PER_SECOND="50",
        KAFKA_SESSION_TIMEOUT_S="6",
    )
    stats = poll_stats(started.web, lambda s: s["topics"][f"{unique}-payouts-approved"]["produced"] > 0, 90)

    assert descendants(started.process.pid) == [], "no broker may start when KAFKA_BOOTSTRAP_SERVERS is set"
    assert stats["topics"][f"{unique}-orders"]["consumed"] > 0
    started.ctrl_c()
    started.wait_for_nothing_left(timeout=10)
    assert started.process.returncode == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOPIC_PARTITIONS": "many"}, "TOPIC_PARTITIONS"),
        ({"EMBEDDED_BROKER": "kafka"}, "EMBEDDED_BROKER: Input should be 'noida' or 'tansu'"),
        ({"EMBEDDED_BROKER": "tansu", "TANSU_BIN": "/nowhere/tansu"}, "TANSU_BIN=/nowhere/tansu does not"),
        ({"EMBEDDED_BROKER": "noida", "NOIDA_BIN": "/nowhere/noida"}, "NOIDA_BIN=/nowhere/noida does not"),
    ],
)
def test_a_start_up_problem_is_one_clear_line(processes, tmp_path: Path, env, message: str) -> None:
    worker = spawn([sys.executable, "-m", "worker"], {"WEB_PORT": str(free_port()), **env}, tmp_path)
    processes.append(worker)
    output, _ = worker.communicate(timeout=30)
    lines = output.decode().strip().splitlines()
    assert worker.returncode == 2
    assert len(lines) == 1 and message in lines[0], lines
