"""The worker as a user starts it: `python -m worker` and `faust -A worker.main worker`, as processes."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.processes import poll_stats, spawn
from worker.broker import free_port


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


def flowing(stats: dict[str, Any]) -> bool:
    topics = stats["topics"]
    return (
        topics["orders"]["consumed"] > 0
        and topics["payouts"]["produced"] > 0
        and topics["payouts-approved"]["produced"] > 0
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_make_run_path_flows_and_leaves_no_process_behind(processes, tmp_path: Path, stop) -> None:
    web, broker = free_port(), free_port()
    env = {"WEB_PORT": str(web), "EMBEDDED_BROKER_PORT": str(broker), "TOPIC_PARTITIONS": "2"}
    started = time.monotonic()
    worker = spawn([sys.executable, "-m", "worker"], env, tmp_path)
    processes.append(worker)

    stats = poll_stats(web, flowing, timeout=60)
    print(f"first approved payout after {time.monotonic() - started:.1f}s: {stats}")
    brokers = children_of(worker.pid)
    assert brokers, "the embedded broker should run as the worker's child"

    worker.send_signal(stop)
    assert worker.wait(timeout=20) == 0
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in brokers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in brokers), "the broker outlived the worker"


def test_faust_cli_runs_the_same_worker_against_an_external_broker(
    processes, bootstrap, unique, tmp_path: Path
) -> None:
    web = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEB_PORT": str(web),
        "APP_ID": unique,
        "TOPIC_PREFIX": f"{unique}-",
        "STOREFRONT_ORDERS_PER_SECOND": "50",
        "TOPIC_PARTITIONS": "2",
        "KAFKA_SESSION_TIMEOUT_S": "6",
    }
    faust = str(Path(sys.executable).with_name("faust"))
    worker = spawn([faust, "-A", "worker.main", "worker", "-l", "info"], env, tmp_path)
    processes.append(worker)

    stats = poll_stats(web, lambda s: s["topics"][f"{unique}-payouts-approved"]["produced"] > 0, 60)

    assert children_of(worker.pid) == [], "no broker may start when KAFKA_BOOTSTRAP_SERVERS is set"
    assert stats["topics"][f"{unique}-orders"]["consumed"] > 0
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOPIC_PARTITIONS": "many"}, "TOPIC_PARTITIONS"),
        ({"TANSU_BIN": "/nowhere/tansu"}, "TANSU_BIN=/nowhere/tansu does not exist"),
    ],
)
def test_a_start_up_problem_is_one_clear_line(processes, tmp_path: Path, env, message: str) -> None:
    worker = spawn([sys.executable, "-m", "worker"], {"WEB_PORT": str(free_port()), **env}, tmp_path)
    processes.append(worker)
    output, _ = worker.communicate(timeout=30)
    lines = output.decode().strip().splitlines()
    assert worker.returncode == 2
    assert len(lines) == 1 and message in lines[0], lines
