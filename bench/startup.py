"""`python -m bench.startup`: `python -m worker` on each embedded broker, side by side, as a user runs it.

For each broker, `--runs` times, alternating: from the start of the process to its first approved payout
(the storefront's orders, through every stage), the join of the worker's consumer group (aiokafka's
"(Re-)joining group" to "Joined group" lines, at LOG_LEVEL=info), and from Ctrl-C (SIGINT to the process
group, as a terminal sends it) until the worker has exited, its broker stopped first. Medians.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import orjson

from bench.procs import ROOT, free_port
from worker.broker import NAMES

FIGURES = ("first approved payout, s", "consumer group join, s", "Ctrl-C to exit, s")
_LINE = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:,]+)\] .*(?P<what>\(Re-\)joining group|Joined group) '?streamline'? "
)


def run_once(broker: str, workdir: Path) -> tuple[float, float, float]:
    """(first approved payout, group join, Ctrl-C to exit), in seconds, for one worker run."""
    web, log = free_port(), workdir / f"{broker}-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "STOREFRONT_"))}
    env |= {"PYTHONPATH": str(ROOT), "EMBEDDED_BROKER": broker, "WEB_PORT": str(web), "LOG_LEVEL": "info"}
    env |= {"EMBEDDED_BROKER_PORT": str(free_port()), "DATA_DIR": str(workdir / log.stem)}
    started = time.monotonic()
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        first = _first_approved(web, worker, started)
        asked = time.monotonic()
        os.killpg(worker.pid, signal.SIGINT)
        worker.wait(30)
        return first, _join_seconds(log), time.monotonic() - asked
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _first_approved(web: int, worker: subprocess.Popen[bytes], started: float) -> float:
    deadline = started + 120
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{web}/stats", timeout=2) as answer:
                if orjson.loads(answer.read())["topics"]["payouts-approved"]["produced"] > 0:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no approved payout within 120 s (worker exit code {worker.poll()})")


def _join_seconds(log: Path) -> float:
    """The last join of the group `streamline`: from its (Re-)joining line to its Joined line."""
    joining = joined = None
    for line in log.read_text(errors="replace").splitlines():
        if match := _LINE.match(line):
            at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f")
            if match["what"] == "Joined group":
                joined = at
            else:
                joining = at
    if joining is None or joined is None:
        raise RuntimeError(f"no join of the group in {log}")
    return (joined - joining).total_seconds()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per broker (medians are shown)")
    args = parser.parse_args(argv)
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in NAMES}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for _ in range(args.runs):
            for name in NAMES:
                runs[name].append(run_once(name, Path(tmp)))
                print(f"{name}: {', '.join(f'{v:.1f}' for v in runs[name][-1])}", file=sys.stderr)
    print("| python -m worker, median of", args.runs, "runs |", " | ".join(NAMES), "|")
    print("|---|" + "--:|" * len(NAMES))
    for index, figure in enumerate(FIGURES):
        values = [statistics.median(run[index] for run in runs[name]) for name in NAMES]
        print(f"| {figure} | " + " | ".join(f"{value:.1f}" for value in values) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
