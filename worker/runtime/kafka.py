"""How every Kafka client of the worker is configured, from the settings, in one place: Faust's app,
the batch stages' consumers, the start-up connection check, replay and reading one record again; and
`stop_consumer`, which closes a consumer by its private parts when leaving its group would wait (see
test_contracts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
from collections.abc import Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocol
from aiokafka.protocol.commit import OffsetCommitRequest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP

from worker.errors import ConfigError
from worker.settings import Settings


def bootstrap_servers(settings: Settings) -> list[str]:
    """`KAFKA_BOOTSTRAP_SERVERS` (comma-separated host:port) as a list."""
    return [host.strip() for host in settings.kafka_bootstrap_servers.split(",") if host.strip()]


def broker_urls(settings: Settings) -> list[str]:
    """The bootstrap servers as Faust broker URLs."""
    return [host if "://" in host else f"kafka://{host}" for host in bootstrap_servers(settings)]


def group_timing(settings: Settings) -> dict[str, float]:
    """Session, rebalance and heartbeat timing (seconds) of every consumer group member."""
    session = settings.session_timeout_s
    # A member learns of a rebalance from its next heartbeat: 1 s keeps joins (and the stops that
    # wait for one) short, at one small request a second per consumer.
    return {"session": session, "rebalance": session, "heartbeat": min(1.0, session / 4)}


def client_config(settings: Settings) -> dict[str, Any]:
    """The aiokafka arguments of every client of the worker: where the cluster is, and security."""
    auth = credentials_to_aiokafka_auth(broker_credentials(settings))
    return {"bootstrap_servers": bootstrap_servers(settings), "client_id": settings.app_id, **auth}


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Map the KAFKA_* security variables onto Faust's credentials (None means PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings) if protocol in {"SSL", "SASL_SSL"} else None
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanisms,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A TLS context trusting `KAFKA_SSL_CAFILE` (or the system CAs), with an optional client cert.

    The broker's certificate and host name are always verified; a file that cannot be loaded is a
    ConfigError naming its variable.
    """
    cafile, certfile, keyfile = (
        str(path) if path else None
        for path in (settings.kafka_ssl_cafile, settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    )
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except ssl.SSLError as exc:
        raise ConfigError(f"KAFKA_SSL_CAFILE: not a PEM CA certificate bundle: {exc.reason}") from None
    if certfile:
        try:
            # A password callback, so that an encrypted key fails here instead of prompting on a tty.
            context.load_cert_chain(certfile, keyfile, password=lambda: b"")
        except ssl.SSLError as exc:
            raise ConfigError(
                "KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE: cannot load the client certificate and its "
                f"key ({exc.reason}); an encrypted key is not supported"
            ) from None
    return context


def kafka_consumer(settings: Settings, group: str | None, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer like Faust's own (cluster, security, group timing), committing by hand."""
    timing = group_timing(settings)
    config: dict[str, Any] = {
        **client_config(settings),
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(timing["session"] * 1000),
        "rebalance_timeout_ms": int(timing["rebalance"] * 1000),
        "heartbeat_interval_ms": int(timing["heartbeat"] * 1000),
    }
    return AIOKafkaConsumer(**{**config, **options})


async def fetched_highwaters(
    settings: Settings, partitions: list[TP], near: Mapping[TP, int]
) -> dict[TP, int]:
    """The high watermarks of `partitions` as a fetch response gives them: one fetch from just before
    the offsets in `near`, by a consumer outside any group (best effort: what it gets in 5 s)."""
    if not partitions:
        return {}
    client = kafka_consumer(settings, None, fetch_max_wait_ms=10, max_partition_fetch_bytes=1024)
    await client.start()
    try:
        tps = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        client.assign(tps)
        for tp, ktp in zip(partitions, tps, strict=True):
            client.seek(ktp, max(near.get(tp, 0) - 1, 0))
        found: dict[TP, int] = {}
        deadline = time.monotonic() + 5
        while len(found) < len(tps) and time.monotonic() < deadline:
            await client.getmany(timeout_ms=100)
            for tp, ktp in zip(partitions, tps, strict=True):
                if (highwater := client.highwater(ktp)) is not None:
                    found[tp] = highwater
        return found
    finally:
        await client.stop()


async def read_record(
    settings: Settings, topic: str, partition: int, offset: int, wait_s: float = 5.0
) -> ConsumerRecord[bytes, bytes] | None:
    """The one record at `offset` of `topic[partition]`, read by a consumer outside any group; None when
    the topic no longer keeps it (retention) or it does not come within `wait_s`."""
    client = kafka_consumer(settings, None, max_partition_fetch_bytes=256 * 1024)
    await client.start()
    try:
        tp = TopicPartition(topic, partition)
        client.assign([tp])
        client.seek(tp, offset)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for record in (await client.getmany(tp, timeout_ms=200, max_records=1)).get(tp, []):
                return record if record.offset == offset else None  # past it: removed by retention
        return None
    finally:
        await client.stop()


async def stop_consumer(client: AIOKafkaConsumer, wait: float) -> bool:
    """Stop `client`, leaving its group if that takes at most `wait` seconds (leaving waits for a
    join in progress); else close it without leaving: the group drops the member after its session
    timeout. True when it left its group. Either way nothing of the client is left running."""
    try:
        await asyncio.wait_for(client.stop(), wait)
        return True
    except TimeoutError:  # the cancelled stop ended inside the coordinator: close the rest here
        coordinator = client._coordinator
        if coordinator is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await coordinator._coordination_task
            await coordinator._stop_heartbeat_task()
            await coordinator._stop_commit_offsets_refresh_task()
        await client._fetcher.close()
        await client._client.close()
        return False


def harden(client: AIOKafkaConsumer) -> None:
    """What every group consumer of the worker gets once started: it rejoins as itself, it does not
    repeat a fetch that brought nothing at once, an empty assignment is no partitions, and a close
    always ends its fetch loop."""
    rejoin_as_itself(client)
    hold_empty_fetches(client)
    accept_empty_assignments(client)
    close_fetches_for_good(client)


def close_fetches_for_good(client: AIOKafkaConsumer) -> None:
    """Make a started consumer's close end its fetch loop, whatever the loop does with a cancel.

    aiokafka's fetch loop, once its assignment is gone (a rebalance), cancels its fetch step and
    awaits it with CancelledError suppressed: a close whose cancel lands then is swallowed, the loop
    goes on to wait for an assignment that never comes, and the close waits on the loop for good (a
    stop hung once in CI, perhaps so: not reproduced). So the loop is cancelled until it has ended,
    then closed as before.
    """
    fetcher = client._fetcher
    close = fetcher.close

    async def close_for_good() -> None:
        loop = fetcher._fetch_task
        while not loop.done():
            loop.cancel()
            await asyncio.wait({loop}, timeout=0.1)
        await close()

    fetcher.close = close_for_good


#: A member's assignment with no partitions, as the consumer protocol writes it.
NO_ASSIGNMENT = ConsumerProtocol.ASSIGNMENT(0, [], b"").encode()


def accept_empty_assignments(client: AIOKafkaConsumer) -> None:
    """Take a group sync that gives this member empty assignment bytes as "no partitions".

    A group's leader may leave a member out of its assignments (one that joined as the leader
    assigned), and the broker then answers that member's sync with no bytes at all. aiokafka fails to
    decode them ("unpack requires a buffer of 2 bytes"), its coordination fails, and the worker
    crashed (seen once, in `make test`'s bench smoke run with two workers on noida-db). With no
    partitions the member waits for the next rebalance.
    """
    coordinator = client._coordinator
    if coordinator is None:
        return
    join_complete = coordinator._on_join_complete

    async def on_join_complete(generation: int, member_id: str, protocol: str, assigned: bytes) -> Any:
        return await join_complete(generation, member_id, protocol, assigned or NO_ASSIGNMENT)

    coordinator._on_join_complete = on_join_complete


#: The least time between a fetch that brought nothing and the next one (see `hold_empty_fetches`).
EMPTY_FETCH_HOLD_S = 0.01


def hold_empty_fetches(client: AIOKafkaConsumer, hold: float = EMPTY_FETCH_HOLD_S) -> None:
    """Make a started consumer wait out the rest of `hold` (at most its own fetch.max.wait.ms) after a
    fetch that brought no record, before it fetches again from that broker.

    A Kafka broker holds such a fetch itself, until data arrives or fetch.max.wait.ms passes, so
    there this waits for nothing. noida-db answers it at once: an idle consumer sent about 3,000
    fetches a second (test_broker_quirks.py), and an idle worker, with Faust's consumer and one per
    batch stage, used a whole core (test_idle.py). The cost: a record that arrives during the wait is
    fetched up to `hold` later.
    """
    fetcher = client._fetcher
    wait = min(hold, fetcher._fetch_max_wait_ms / 1000)
    fetch = fetcher._proc_fetch_request

    async def proc_fetch_request(assignment: Any, node_id: int, request: Any) -> bool:
        started = time.monotonic()
        brought = bool(await fetch(assignment, node_id, request))
        left = wait - (time.monotonic() - started)
        if brought or left <= 0 or _cancelled() or not assignment.active:
            # A step cancelled in the fetch (a close, a lost assignment) returns at once, as aiokafka's
            # own does: its fetch loop, awaiting it, would swallow a close's cancel meanwhile
            # (`close_fetches_for_good`).
            return brought
        with contextlib.suppress(asyncio.CancelledError):  # likewise: return, do not raise
            await asyncio.sleep(left)
        return brought

    fetcher._proc_fetch_request = proc_fetch_request


def _cancelled() -> bool:
    """Whether this task was asked to stop (aiokafka's fetch step returns False on a cancel)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


#: aiokafka's group join and sync, whose UNKNOWN_MEMBER_ID answers mean the broker does not know the id.
JOIN_STEPS = frozenset({"perform_group_join", "_send_sync_group_request"})


def rejoin_as_itself(client: AIOKafkaConsumer) -> None:
    """Make a started group consumer rejoin under its own member id after its generation went stale.

    aiokafka drops the member id with the generation (a commit or heartbeat answered
    ILLEGAL_GENERATION after the group moved on) and joins as a new member; the broker then holds
    the old member until its session expires, and the rebalance waits for it (on any cluster).
    noida-db 0.2.3 never expires it, and can keep it as the group's leader, so the group never
    syncs again: two workers sharing a group stalled after a rebalance (test_broker_quirks.py).
    Rejoining as itself leaves no such member. Only when the join or sync itself is refused (the
    broker does not know the id) is the id dropped, as before.
    """
    coordinator = client._coordinator
    if coordinator is None:
        return
    reset = coordinator.reset_generation

    def reset_generation() -> None:
        if sys._getframe(1).f_code.co_name in JOIN_STEPS:
            reset()
            return
        coordinator.generation = OffsetCommitRequest.DEFAULT_GENERATION_ID
        coordinator.request_rejoin()

    coordinator.reset_generation = reset_generation
