"""Plain-socket probes of a local broker: is the port free, does a Kafka broker answer there."""

from __future__ import annotations

import socket
import struct

from worker.errors import BrokerError

HOST = "127.0.0.1"


def ensure_port_free(port: int) -> None:
    """Raise BrokerError, saying what to change, when something listens on `port` already."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise BrokerError(
                f"port {port} on {HOST} is taken: stop what listens there, "
                "or set EMBEDDED_BROKER_PORT to a free port (or KAFKA_BOOTSTRAP_SERVERS to a cluster)"
            ) from None


def answers_metadata(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Kafka broker at host:port answers a Metadata (v0) request."""
    return _answers(host, port, api_key=3, body=struct.pack(">i", 0), timeout=timeout)


def answers_api_versions(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Kafka broker at host:port answers an ApiVersions (v0) request."""
    return _answers(host, port, api_key=18, body=b"", timeout=timeout)


def _answers(host: str, port: int, *, api_key: int, body: bytes, timeout: float) -> bool:
    client_id = b"streamline"
    body = struct.pack(">hhih", api_key, 0, 7, len(client_id)) + client_id + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exactly(conn, 8)
    except OSError:
        return False
    _size, correlation_id = struct.unpack(">ii", header)
    return bool(correlation_id == 7)


def _read_exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
