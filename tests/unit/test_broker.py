"""The embedded broker: found, started, answering, stopped; clear lines when it cannot start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from worker.broker import EmbeddedBroker, answers_metadata, find_tansu, free_port
from worker.errors import BrokerError


def test_it_starts_answers_metadata_and_stops_without_a_trace(tmp_path: Path) -> None:
    broker = EmbeddedBroker(find_tansu(), free_port(), log_path=tmp_path / "tansu.log")
    with broker:
        process = broker.process
        assert process is not None
        assert answers_metadata("127.0.0.1", broker.port)
    assert process.poll() is not None
    assert not answers_metadata("127.0.0.1", broker.port)


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} .* is taken.*EMBEDDED_BROKER_PORT"):
            EmbeddedBroker(find_tansu(), port).start()


def test_a_missing_binary_says_what_to_do(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="TANSU_BIN=.*does not exist"):
        find_tansu(tmp_path / "nope")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(BrokerError, match="make install.*KAFKA_BOOTSTRAP_SERVERS"):
        find_tansu()


def test_a_tansu_on_path_takes_the_wheels_place(monkeypatch, tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tansu() == fake


def test_a_broker_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    dud = tmp_path / "tansu"
    dud.write_text("#!/bin/sh\nexit 3\n")
    dud.chmod(0o755)
    with pytest.raises(BrokerError, match="exited with code 3"):
        EmbeddedBroker(dud, free_port()).start()
