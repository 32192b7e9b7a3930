"""Variant processes: started with their own env and log, measured (peak RSS), always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Process:
    """One benchmarked process (`python -m <module> ...`), its log in `workdir`."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], workdir: Path, profile: Path | None = None
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "STOREFRONT_"))}
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, *args],
                env={**base, **env},
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.peak_rss_mb: float | None = None
        self.profiler = _profile(self.pid, profile / f"{name}.txt") if profile else None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        """Raise with the end of its log if the process has exited."""
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace").splitlines()[-30:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n" + "\n".join(tail))

    def read_peak_rss(self) -> float | None:
        """Peak resident memory so far (VmHWM), in MB."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return self.peak_rss_mb
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_rss_mb = int(line.split()[1]) / 1024
        return self.peak_rss_mb

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far."""
        return cpu_seconds(self.pid)

    def cpu_wait_seconds(self) -> float:
        """Time its threads were ready to run but waited for a core (the scheduler's run queue), so far."""
        total = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
                continue
        return total / 1e9

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        self.read_peak_rss()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.profiler is not None:
            self.profiler.wait(30)  # py-spy writes its file when the process it watches ends


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far, every thread of it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of every core since boot (/proc/stat): a window's difference is how busy
    the machine was."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def _profile(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """Sample `pid` with py-spy (collapsed stacks, for `python -m bench.flame`)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "-o", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def table_store() -> str:
    """Where the workers keep their tables: rocksdb://, what production runs, unless the bench's
    environment says TABLE_STORE=memory://."""
    return os.environ.get("TABLE_STORE", "rocksdb://")


def worker_env(bootstrap: str, app_id: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process for one variant: its own group and topic names."""
    return {
        "TABLE_STORE": table_store(),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "APP_ID": app_id,
        "TOPIC_PREFIX": f"{app_id}-",
        "TOPIC_PARTITIONS": "6",
        "STOREFRONT_ORDERS_PER_SECOND": "0",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "WEB_PORT": str(free_port()),
        "LOG_LEVEL": "error",
        **extra,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
