"""noida-db 0.2 (PyPI `noida-db`): one binary with a Kafka-protocol service among others; only that
one is started. It keeps its data in memory and writes all of it to a JSON file in its data directory
about once a second; the directory is emptied at each start, so every start is a fresh cluster, as with
Tansu.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from worker.broker.binary import find_binary
from worker.broker.probe import HOST
from worker.broker.process import BrokerProcess


def find_noida(configured: Path | None = None) -> Path:
    """The noida-db binary to run (`NOIDA_BIN`, `noida-db` on PATH, the wheel's), or BrokerError."""
    return find_binary("noida-db", "NOIDA_BIN", configured, "noida-db", "noida-db")


class Noida(BrokerProcess):
    """A noida-db Kafka service; its data in `data_dir` (default: a temporary directory)."""

    name = "noida"
    label = "noida-db"

    def __init__(
        self, binary: Path, port: int, log_path: Path | None = None, *, data_dir: Path | None = None
    ) -> None:
        super().__init__(binary, port, log_path)
        self.data_dir = data_dir
        self._temporary: Path | None = None

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "start",
            "--only",
            "kafka",
            "--host",
            HOST,
            "--kafka-port",
            str(self.port),
            "--data-dir",
            str(self._fresh_data_dir()),
        ]

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def _fresh_data_dir(self) -> Path:
        if self.data_dir is None:
            self._temporary = Path(tempfile.mkdtemp(prefix="noida-"))
            return self._temporary
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        return self.data_dir
