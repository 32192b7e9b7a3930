"""The Faust app, configured from the settings. It knows nothing of topics, agents or views.

`create_app` is called once by the composition root (`worker.main`); the stages receive the app as
an argument and never import this module's caller, which would load the app twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.app.base import BootStrategy
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, AppT, Message, TopicT, TransportT
from faust.types.tuples import ack_lock
from faust.web.drivers.aiohttp import Web
from mode import Service, ServiceT
from mode.utils.futures import notify
from pydantic import SecretStr

from worker import shutdown
from worker.errors import ConfigError
from worker.logs import Chatter, Printable, Redact, logging_config
from worker.settings import BrokerQuirks, Settings
from worker.stores import Table, forget_unclean_tables, stopped_cleanly

logger = logging.getLogger(__name__)


class _CreateTopics(Service):
    """Creates the pipeline's topics, with their partitions, before the web server starts."""

    def __init__(self, topics: Iterable[TopicT], **kwargs: Any) -> None:
        self.topics = list(topics)
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        for topic in self.topics:
            await topic.maybe_declare()


#: How long a stop or a hand-over waits for the messages in progress (then leaves them uncommitted).
STOP_WAIT_S = 4.0


class _AtLeastOnceConsumer(aiokafka_driver.Consumer):
    """Faust's consumer, minus three ways to lose messages (measured here: 2 to 18 orders lost on a
    restart after a graceful stop; then 1 in about one restart in five, from the third).

    1. A stream skips messages fetched under an older group generation or while flow is stopped,
       and the pure-Python stream acks what it skips as if processed. Such acks are dropped here.
    2. When the offsets the fetcher delivers jump (after a rebalance, a partition kept its fetch
       position past messages the streams skipped), Faust records the hole as a "gap" and treats it
       as acked, so the commit passes over messages nobody processed. Holes are legitimate only on
       compacted or transactional topics, which this pipeline does not consume: here the partition
       is sent back to the first missing offset, and nothing after the hole is delivered until the
       missing messages are.
    3. Faust's commit skips a single unacked message right after the committed offset (an off-by-one
       in `Consumer._new_offset`). Here the commit waits for it, and fetches it again if no stream
       has it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Partitions to fetch again from an offset that no stream processed (see `_new_offset`).
        self._refetch: dict[TP, int] = {}

    async def wait_empty(self) -> None:
        """Faust's wait, at a stop or a hand-over, for the messages in progress to be acknowledged,
        then a commit; bounded by STOP_WAIT_S, since a stage whose output cannot reach the broker
        never acknowledges its message (Faust's own wait has no bound, and its wait for an ack
        swallows cancellation). What is left is not committed: it is processed again on the next
        start, or by the partition's next owner."""
        deadline = time.monotonic() + STOP_WAIT_S
        with contextlib.suppress(TimeoutError):
            while self._unacked_messages and not self.should_stop and time.monotonic() < deadline:
                await asyncio.wait_for(self.commit(), max(0.1, deadline - time.monotonic()))
                await self._wait_for_ack(timeout=1)
                self._clean_unacked_messages()
            if self._unacked_messages:
                logger.warning(
                    "%d message(s) still in progress after %ss are left uncommitted: they will be "
                    "processed again",
                    len(self._unacked_messages),
                    STOP_WAIT_S,
                )
            await asyncio.wait_for(self.commit_and_end_transactions(), max(1.0, deadline - time.monotonic()))

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's stall check is off: it logged multi-line "Stream has not started processing" ERRORs
        for healthy partitions after five minutes. `/readyz` (`worker.progress`) does that job."""

    def committed_offsets(self) -> dict[TP, int]:
        """The group's committed offset of each assigned partition, as of the assignment or the last
        commit (for `/readyz`: lag counts from it until the first message arrives)."""
        return {tp: offset for tp, offset in self._committed_offset.items() if offset is not None}

    def ack(self, message: Message) -> bool:
        app = self.app
        if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
            return bool(super().ack(message))
        self.release(message)
        return False

    def release(self, message: Message) -> None:
        """Done with `message` without processing it: shutdown does not wait for it, and it is not
        committed (it is fetched again, by this worker or the partition's next owner)."""
        with ack_lock:
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)

    def ack_released(self, message: Message) -> bool:
        """Acknowledge a message `release`d before (its stage has dealt with it since)."""
        with ack_lock:
            message.acked = False
            return self.ack(message)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust commits over a hole of exactly one message just after the committed offset: it holds
        # back only when `min(acked) - committed > 1`. Here the commit waits for the message at the
        # committed offset; if no stream holds it (a stream skipped it around a rebalance and nothing
        # fetches it again: measured, 1 message in about one restart in five), it is fetched again.
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if acked and committed is not None and min(acked) > committed:
            if not any(m.tp == tp and m.offset == committed for m in self._unacked_messages):
                self._refetch[tp] = committed
            return None
        return super()._new_offset(tp)

    async def end_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        """The broker's end offsets (ListOffsets), as Faust's `highwaters` reads them."""
        return await super().highwaters(*partitions)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for tp, offset in self._refetch.items():
            if tp in self.assignment():
                logger.info("%s: offset %d was never processed: fetching from it again", tp, offset)
                await self.seek(tp, offset)
        self._refetch.clear()
        async for tp, message in super().getmany(timeout):
            last = self._read_offset.get(tp)
            if last is not None and message.offset > last + 1:
                logger.debug(  # after a rebalance: the normal way back to the committed offset
                    "%s jumped from %d to %d: fetching the skipped offsets again", tp, last, message.offset
                )
                await self.seek(tp, last + 1)
                self._read_offset[tp] = last  # seek() stores the next offset; the check wants the last
                continue  # delivered again, in order, after the missing ones
            yield tp, message


class _TansuConsumer(_AtLeastOnceConsumer):
    """The consumer on Tansu 0.6, whose ListOffsets answers the base offset of the last record batch
    instead of the end of the partition."""

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        # Table recovery reads each changelog up to these offsets: on Tansu it stopped before the last
        # batch and the ledger forgot payouts it had settled (17 re-settled after two kills in the crash
        # test). The high watermark in a fetch response is right there: the larger of the two is used.
        ends = dict(await self.end_offsets(*partitions))
        try:
            fetched = await fetched_highwaters(self.app, list(partitions), ends)
        except Exception as exc:  # the broker's answer is the best there is
            logger.warning("could not read high watermarks with a fetch (%r): using the end offsets", exc)
            return ends
        return {tp: max(end, fetched.get(tp, end)) for tp, end in ends.items()}


class _Transport(aiokafka_driver.Transport):
    Consumer = _AtLeastOnceConsumer


class _TansuTransport(aiokafka_driver.Transport):
    Consumer = _TansuConsumer


class _Boot(BootStrategy):
    """Faust's boot order (sensors, producer, web, consumer...) with topic creation before web."""

    def web_server(self) -> Iterable[ServiceT]:
        app = self.app
        assert isinstance(app, PipelineApp)
        return [_CreateTopics(app.topics_to_create), *super().web_server()]

    def agents(self) -> Iterable[ServiceT]:
        app = self.app
        assert isinstance(app, PipelineApp)
        return [*super().agents(), *app.stage_services]


class _Worker(faust.Worker):
    """Faust's worker, with the app's secrets masked in every log line and without its spinner.

    At a log level of warning or above the start-up spinner sets the root logger to DEBUG, so that
    every library's debug line (aiokafka logs each message it sends) is built and then dropped: a
    tenth of the hot path's time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None

    async def stop(self) -> None:
        # Faust's stop has no limit when the broker does not answer: this one has (`worker.shutdown`).
        shutdown.bound_stop()
        await super().stop()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        app = self.app
        assert isinstance(app, PipelineApp)
        for handler in logger.handlers:
            handler.addFilter(Chatter(level))  # Faust's narration is detail below debug
            handler.addFilter(Printable())  # message data escaped first, then secrets masked
            handler.addFilter(Redact(app.secrets))
            handler.addFilter(shutdown.QuietClients())


class _Web(Web):
    """Faust's aiohttp web server without its placeholder index (`{"status": "OK"}`) at `/`,
    which Faust mounts whenever `web_stats_enabled` is off: the review dashboard lives there."""

    production_blueprints = ()


class PipelineApp(faust.App):
    """A Faust app that creates every pipeline topic at start-up, not only its internal ones."""

    BootStrategy = _Boot

    def _new_web(self) -> Web:
        return _Web(self)

    def __init__(
        self,
        *args: Any,
        secrets: Iterable[SecretStr] = (),
        broker_quirks: BrokerQuirks = "none",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, Worker=_Worker, **kwargs)
        #: The broker's deviations the consumer works around (`Settings.broker_quirks`).
        self.broker_quirks = broker_quirks
        self.topics_to_create: list[TopicT] = []
        self.stage_services: list[ServiceT] = []
        #: Values no log line may show (masked by the worker's log handlers).
        self.secrets = tuple(secrets)
        #: The one line a person reads when the worker has started (see `create_app`).
        self.start_line = ""

    def _new_transport(self) -> TransportT:
        transport = _TansuTransport if self.broker_quirks == "tansu" else _Transport
        return transport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        # Faust creates DATA_DIR itself but not its parents (the default is .data/<app>-<port>).
        self.conf.datadir.parent.mkdir(parents=True, exist_ok=True)
        forget_unclean_tables(Path(self.conf.datadir), Path(self.conf.tabledir))
        await super().on_first_start()

    async def on_started(self) -> None:
        await super().on_started()
        logger.info("%s", self.start_line)

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        if not self._crash_reason:  # the producer was flushed: the changelogs have every table write
            stopped_cleanly(Path(self.conf.datadir))

    def create_on_start(self, topics: Iterable[TopicT]) -> None:
        """Create `topics` (if missing) when the worker starts, before `/stats` answers."""
        self.topics_to_create.extend(topics)

    def start_with_agents(self, service: ServiceT) -> None:
        """Run `service` (a batch consumer) with the agents: started after the producer, stopped before it."""
        self.stage_services.append(service)


#: Producer and consumer settings that matter for throughput and latency (README, Performance).
THROUGHPUT: dict[str, Any] = {
    # A batch stage hands a whole batch to the producer at once: fewer, bigger produce requests.
    "producer_max_batch_size": 256 * 1024,
    # Waiting for more messages only adds latency when a batch arrives all at once.
    "producer_linger": 0.0,
}


def create_app(settings: Settings) -> PipelineApp:
    """A Faust app for `settings`: broker, credentials, store, web port and the local profile."""
    session = settings.session_timeout_s
    app = PipelineApp(
        settings.app_id,
        secrets=(settings.kafka_sasl_password, settings.review_api_token),
        broker_quirks=settings.broker_quirks,
        broker=broker_urls(settings),
        broker_credentials=broker_credentials(settings),
        broker_session_timeout=session,
        broker_rebalance_timeout=session,
        # A member learns of a rebalance from its next heartbeat: 1 s keeps joins (and the stops
        # that wait for one) short, at one small request a second per consumer.
        broker_heartbeat_interval=min(1.0, session / 4),
        broker_commit_interval=settings.commit_interval_s,
        store=settings.table_store,
        Table=Table,
        recovery_consistency_check=settings.recovery_consistency_check,
        datadir=str(settings.datadir),
        topic_partitions=settings.topic_partitions,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        canonical_url=settings.advertised_url,  # what the other workers route review requests to
        web_stats_enabled=False,
        web_graph_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        autodiscover=False,
        logging_config=logging_config(settings.log_format, settings.log_level),
        **THROUGHPUT,
    )
    app.start_line = start_line(settings)
    return app


def start_line(settings: Settings, broker: str | None = None) -> str:
    """What a person needs from the start: the broker, where to look, where the tables live."""
    url = settings.local_url
    return (
        f"streamline ready: broker {broker or settings.kafka_bootstrap_servers}, "
        f"dashboard {url}/, stats {url}/stats, tables {settings.table_store}"
        + (f" in {settings.datadir}" if settings.table_store == "rocksdb://" else "")
    )


def broker_urls(settings: Settings) -> list[str]:
    """`KAFKA_BOOTSTRAP_SERVERS` (comma-separated host:port) as Faust broker URLs."""
    hosts = [h.strip() for h in settings.kafka_bootstrap_servers.split(",") if h.strip()]
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


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


def kafka_consumer(app: AppT, group: str | None, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer configured like Faust's own (broker, credentials, group timing)."""
    conf = app.conf
    settings: dict[str, Any] = {
        "bootstrap_servers": aiokafka_driver.server_list(conf.broker, 9092),
        "client_id": conf.broker_client_id,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": conf.consumer_auto_offset_reset,
        "session_timeout_ms": int(conf.broker_session_timeout * 1000),
        "rebalance_timeout_ms": int(conf.broker_rebalance_timeout * 1000),
        "heartbeat_interval_ms": int(conf.broker_heartbeat_interval * 1000),
        "request_timeout_ms": int(conf.broker_request_timeout * 1000),
        "max_partition_fetch_bytes": conf.consumer_max_fetch_size,
        **aiokafka_driver.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
    }
    return AIOKafkaConsumer(**{**settings, **options})


async def fetched_highwaters(app: AppT, partitions: list[TP], near: Mapping[TP, int]) -> dict[TP, int]:
    """The high watermarks of `partitions` as a fetch response gives them: one fetch from just before
    the offsets in `near`, by a consumer outside any group (best effort: what it gets in 5 s)."""
    if not partitions:
        return {}
    client = kafka_consumer(app, None, fetch_max_wait_ms=10, max_partition_fetch_bytes=1024)
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
