"""Secured clusters: the pipeline over mutual TLS, and one clear line when TLS or SASL refuses us.

TLS: Tansu 0.6 cannot serve TLS (its CLI refuses `--cert` with `--key`), so a TLS terminator with a
throwaway CA stands in front of it as its listener, and Tansu advertises the terminator's port: every
byte the worker exchanges with the cluster goes through a real TLS 1.3 session.
SASL: Tansu's `--authentication` requires SCRAM, but users cannot be created on such a broker
(`tansu user create` does not authenticate and gets NotAuthenticated; storage is memory-only, so a
user made before cannot survive a restart). So only the refusal is tested here, against real Tansu.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.kafka import produce, read_until
from tests.processes import free_port, spawn
from tests.tls import Authority, Pem, TlsTerminator
from worker.broker import EmbeddedBroker, find_tansu
from worker.main import build
from worker.runtime.connect import probe
from worker.runtime.kafka import ssl_context
from worker.settings import Settings

PASSWORD = "Sasl-pw-4f9b2c71e0"
TOKEN = "review-token-8d3e5a"


class Pki:
    def __init__(self, directory: Path) -> None:
        self.ca, self.other = Authority(directory, "ca"), Authority(directory, "impostor-ca")
        self.server: Pem = self.ca.issue("broker")
        self.client: Pem = self.ca.issue("worker")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_cluster(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsTerminator]:
    """Tansu behind a TLS listener that requires a client certificate from the test CA."""
    tls_port, plain_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("tls-broker") / "tansu.log"
    with EmbeddedBroker(find_tansu(), plain_port, log_path=log, advertised_port=tls_port):
        terminator = TlsTerminator(plain_port, pki.server, client_ca=pki.ca.pem.cert).start(tls_port)
        try:
            yield terminator
        finally:
            terminator.stop()


@pytest.fixture(scope="module")
def sasl_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Tansu requiring SASL authentication from every client."""
    log = tmp_path_factory.mktemp("sasl-broker") / "tansu.log"
    with EmbeddedBroker(find_tansu(), free_port(), log_path=log, authentication=True) as broker:
        yield broker.bootstrap_servers


def tls_settings(pki: Pki, terminator: TlsTerminator, tmp_path: Path, **overrides: Any) -> Settings:
    unique = f"t{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": f"127.0.0.1:{terminator.port}",
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": pki.ca.pem.cert,
        "kafka_ssl_certfile": pki.client.cert,
        "kafka_ssl_keyfile": pki.client.key,
        "app_id": unique,
        "topic_prefix": f"{unique}-",
        "topic_partitions": 1,
        "web_port": free_port(),
        "data_dir": tmp_path / "data",
        "storefront_orders_per_second": 0,
        "kafka_session_timeout_s": 6,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[arg-type]


async def test_the_pipeline_runs_over_mutual_tls(pki: Pki, tls_cluster: TlsTerminator, tmp_path: Path):
    settings = tls_settings(pki, tls_cluster, tmp_path)
    await probe(settings)  # the start-up check `python -m worker` makes
    before = tls_cluster.handshakes
    pipeline = build(settings)
    await pipeline.app.start()
    try:
        worker_handshakes = tls_cluster.handshakes - before  # producer and admin connect at start

        client = {"security_protocol": "SSL", "ssl_context": ssl_context(settings)}
        bootstrap, topics = settings.kafka_bootstrap_servers, pipeline.topics
        order = orjson.dumps(
            {
                "order_id": "o-tls",
                "seller_id": "s-1",
                "customer_id": "c-1",
                "amount": "120.00",
                "currency": "EUR",
                "created_at": "2026-11-28T10:00:00Z",
            }
        )
        await produce(bootstrap, topics.orders.get_topic_name(), [(b"s-1", order)], **client)
        [payout] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool, **client)
    finally:
        await pipeline.app.stop()
    assert (payout["order_id"], payout["net"]) == ("o-tls", "116.22")
    assert worker_handshakes > 0, "the worker's own clients must go through the TLS listener"


def run_worker(bootstrap: str, env: dict[str, str], tmp_path: Path) -> tuple[int, list[str]]:
    base = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WEB_PORT": str(free_port()), "LOG_LEVEL": "debug"}
    worker = spawn([sys.executable, "-m", "worker"], {**base, **env}, tmp_path)
    try:
        output, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    return worker.returncode, output.decode().strip().splitlines()


def client_certificate(pki: Pki) -> dict[str, Path]:
    return {"KAFKA_SSL_CERTFILE": pki.client.cert, "KAFKA_SSL_KEYFILE": pki.client.key}


TLS_REFUSALS = {
    "impostor CA": (
        lambda pki: {"KAFKA_SSL_CAFILE": pki.other.pem.cert, **client_certificate(pki)},
        r"is not trusted \(self-signed certificate in certificate chain\): set KAFKA_SSL_CAFILE",
    ),
    "system CAs": (client_certificate, r"is not trusted .*KAFKA_SSL_CAFILE"),
    "no client certificate": (
        lambda pki: {"KAFKA_SSL_CAFILE": pki.ca.pem.cert},
        r"closed\): check .*KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE",
    ),
}


@pytest.mark.parametrize("case", TLS_REFUSALS)
def test_a_tls_refusal_stops_the_worker_with_one_line(
    pki: Pki, tls_cluster: TlsTerminator, tmp_path: Path, case: str
) -> None:
    files, expected = TLS_REFUSALS[case]
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", **{k: str(v) for k, v in files(pki).items()}}
    code, lines = run_worker(f"127.0.0.1:{tls_cluster.port}", env, tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("streamline: TLS") or "closed" in lines[0], lines
    assert re.search(expected, lines[0]), lines


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_wrong_sasl_credentials_stop_the_worker_with_one_line_and_no_secret(
    sasl_cluster: str, tmp_path: Path, mechanism: str
) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISMS": mechanism,
        "KAFKA_SASL_USERNAME": "payouts-svc",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "REVIEW_API_TOKEN": TOKEN,
    }
    code, lines = run_worker(sasl_cluster, env, tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert f"SASL authentication as 'payouts-svc' ({mechanism}) failed" in lines[0]
    assert "KAFKA_SASL_PASSWORD" in lines[0]
    assert PASSWORD not in lines[0] and TOKEN not in lines[0]
