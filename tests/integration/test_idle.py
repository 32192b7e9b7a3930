"""An idle worker leaves the CPU to others: no fetch is repeated at once when it brought nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.integration.test_resilience import worker_env
from tests.processes import Worker, poll_json

#: Of a core, the most an idle worker may use. Measured on noida-db (which answers a fetch without
#: data at once): 0.97 without `hold_empty_fetches`, about 0.2 with it.
IDLE_SHARE = 0.5


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


async def test_an_idle_worker_uses_less_than_half_a_core(bootstrap, unique, tmp_path: Path) -> None:
    worker = Worker(worker_env(bootstrap, unique, tmp_path), tmp_path, tmp_path / "worker.log").start()
    try:
        poll_json(worker.port, "/readyz", lambda r: r.get("ready") is True, timeout=60)
        assert worker.process is not None
        pid = worker.process.pid
        started, used = time.monotonic(), cpu_seconds(pid)
        time.sleep(5)  # the idle time being measured, not a wait for a condition
        share = (cpu_seconds(pid) - used) / (time.monotonic() - started)
        assert share < IDLE_SHARE, f"an idle worker used {share:.2f} of a core\n{worker.tail()}"
    finally:
        worker.stop()
        worker.ensure_gone()
