"""The start-up connection check: reach the cluster once, as the worker will, or say why not in one line.

Without it a wrong password or an untrusted certificate ends in a Faust stack trace (aiokafka logs the
cause and raises "Unable to bootstrap"; a refused SCRAM exchange even surfaces as `KeyError('v')`).
The check uses Faust's own mapping of the credentials to aiokafka, so it tests what the worker uses.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka import errors
from aiokafka.cluster import ClusterMetadata
from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.protocol.metadata import MetadataRequest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from worker.errors import ConnectError
from worker.runtime.kafka import broker_credentials
from worker.settings import Settings

TIMEOUT_S = 20.0


def check_connection(settings: Settings, timeout: float = TIMEOUT_S) -> None:
    """Connect, authenticate and read metadata, or raise ConnectError naming the cause and the fix."""
    loop = asyncio.new_event_loop()  # not the worker's loop: Faust creates that one later
    aiokafka_log = logging.getLogger("aiokafka")
    level, aiokafka_log.level = aiokafka_log.level, logging.CRITICAL  # the cause is reported below
    try:
        loop.run_until_complete(probe(settings, timeout))
    finally:
        aiokafka_log.setLevel(level)
        loop.close()


async def probe(settings: Settings, timeout: float = TIMEOUT_S) -> None:
    """`check_connection` inside a running event loop."""
    auth = dict(credentials_to_aiokafka_auth(broker_credentials(settings)))  # ConfigError goes up as is
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    failure = ""
    for address in hosts:
        try:
            async with asyncio.timeout(timeout):
                await _reach_cluster(address, auth, settings.app_id)
            return
        except Exception as exc:  # every cause is turned into a sentence below
            failure = failure or describe(exc, settings, address, timeout)
    raise ConnectError(failure)


async def _reach_cluster(address: str, auth: dict[str, Any], client_id: str) -> None:
    """Bootstrap through `address`, then reach the first broker the cluster advertises."""
    conn = await _connect(address, auth, client_id)
    try:
        cluster = ClusterMetadata()
        cluster.update_metadata(await conn.send(MetadataRequest([])))
    finally:
        conn.close()
    for broker in sorted(cluster.brokers(), key=lambda b: b.nodeId)[:1]:
        advertised = f"{broker.host}:{broker.port}"
        try:
            (await _connect(advertised, auth, client_id)).close()
        except (OSError, errors.KafkaConnectionError) as exc:
            raise ConnectError(
                f"{address} answers, but the broker it advertises, {advertised}, cannot be reached "
                f"from here ({_reason(exc)}): the cluster's advertised listeners must be reachable"
            ) from None


async def _connect(address: str, auth: dict[str, Any], client_id: str) -> AIOKafkaConnection:
    host, _, port = address.rpartition(":")
    timeout_ms = int(TIMEOUT_S * 1000)
    return await create_conn(host, int(port), client_id=client_id, request_timeout_ms=timeout_ms, **auth)


def describe(exc: BaseException, settings: Settings, address: str, timeout: float) -> str:
    """One sentence for a failed connection to `address`: what went wrong and which variable to fix."""
    protocol, user = settings.kafka_security_protocol, settings.kafka_sasl_username
    mechanism = settings.kafka_sasl_mechanisms
    if isinstance(exc, ConnectError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {address} is not trusted ({exc.verify_message}): set "
            "KAFKA_SSL_CAFILE to the CA that signed it, and connect by a name the certificate lists"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake with {address} failed ({exc.reason or exc}): check KAFKA_SECURITY_PROTOCOL="
            f"{protocol} and the client certificate (KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE)"
        )
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        return f"{address} does not accept SASL mechanism {mechanism}: set KAFKA_SASL_MECHANISMS ({exc})"
    sasl, tls = protocol.startswith("SASL"), protocol.endswith("SSL")
    # aiokafka reports a refused SCRAM exchange as KeyError/ValueError from parsing the server's reply.
    refused = errors.SaslAuthenticationFailed, errors.AuthenticationFailedError, errors.IllegalSaslStateError
    if isinstance(exc, refused) or (sasl and isinstance(exc, KeyError | ValueError)):
        return (
            f"SASL authentication as {user!r} ({mechanism}) failed at {address}: check "
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
        )
    if isinstance(exc, TimeoutError):
        return (
            f"no answer from {address} within {timeout:.0f}s: check KAFKA_BOOTSTRAP_SERVERS, the network, "
            f"and KAFKA_SECURITY_PROTOCOL={protocol} (a TLS listener ignores a PLAINTEXT client)"
        )
    hints = ["KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL"]
    hints += ["KAFKA_SASL_MECHANISMS (a broker may close the connection on one it does not offer)"] * sasl
    hints += ["KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE (a broker that wants a client certificate closes)"] * tls
    return (
        f"cannot connect to {address} with KAFKA_SECURITY_PROTOCOL={protocol} ({_reason(exc)}): "
        f"check {', '.join(hints)}"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
