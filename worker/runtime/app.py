"""The Faust app, configured from the settings. It knows nothing of topics, stages or views.

`create_app` is called once by the composition root (`worker.main`); the features receive the app in
their context and never import `worker.main`, which would load the app twice.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faust
from faust.app.base import BootStrategy
from faust.types import TopicT, TransportT
from faust.web.drivers.aiohttp import Web
from mode import Service, ServiceT
from pydantic import SecretStr

from worker.runtime import shutdown
from worker.runtime.kafka import broker_credentials, broker_urls, group_timing
from worker.runtime.logs import Chatter, Printable, Redact, Repeats, logging_config
from worker.runtime.stores import Table, forget_unclean_tables, stopped_cleanly
from worker.runtime.transport import TansuTransport, Transport
from worker.settings import Settings

logger = logging.getLogger(__name__)


class _CreateTopics(Service):
    """Creates the pipeline's topics, with their partitions, before the web server starts."""

    def __init__(self, topics: Iterable[TopicT], **kwargs: Any) -> None:
        self.topics = list(topics)
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        for topic in self.topics:
            await topic.maybe_declare()


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

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        if sys.platform != "win32":
            shutdown.quiet_from_the_signal(signal.SIGINT, signal.SIGTERM)

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
            handler.addFilter(Repeats(level))  # a vanished broker: each line once every 10 s
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

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, Worker=_Worker, **kwargs)
        self.settings = settings
        self.topics_to_create: list[TopicT] = []
        self.stage_services: list[ServiceT] = []
        #: Values no log line may show (masked by the worker's log handlers).
        self.secrets: tuple[SecretStr, ...] = settings.secrets
        #: The one line a person reads when the worker has started (see `create_app`).
        self.start_line = ""

    def _new_transport(self) -> TransportT:
        # Tansu's workarounds only where Tansu is the broker (`BROKER_QUIRKS`).
        transport = TansuTransport if self.settings.broker_quirks == "tansu" else Transport
        return transport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        # Faust creates DATA_DIR itself but not its parents (the default is .data/<app>-<port>).
        self.conf.datadir.parent.mkdir(parents=True, exist_ok=True)
        forget_unclean_tables(Path(self.conf.datadir), Path(self.conf.tabledir))
        await super().on_first_start()

    async def on_started(self) -> None:
        await super().on_started()
        # What start-up made (modules, the app, its services) lives as long as the process: kept out
        # of the garbage collector's full passes, which took up to 250 ms each on the event loop at
        # 1,000 orders/s (10 in 60 s, 1.25 s in all; 8 and 0.39 s with it: docs/performance.md).
        gc.collect()
        gc.freeze()
        logger.info("%s", self.start_line)

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        gc.unfreeze()
        unsent = self.producer.changelogs.queued  # type: ignore[attr-defined]
        if not self._crash_reason and not unsent:  # the changelogs have every table write
            stopped_cleanly(Path(self.conf.datadir))

    def create_on_start(self, topics: Iterable[TopicT]) -> None:
        """Create `topics` (if missing) when the worker starts, before `/stats` answers."""
        self.topics_to_create.extend(topics)

    def start_with_agents(self, service: ServiceT) -> None:
        """Run `service` (a batch consumer) with the agents: started after the producer, stopped before it."""
        self.stage_services.append(service)


#: Producer and consumer settings that matter for throughput, latency and memory (README, Performance).
THROUGHPUT: dict[str, Any] = {
    # A batch stage hands a whole batch to the producer at once: fewer, bigger produce requests.
    "producer_max_batch_size": 256 * 1024,
    # Waiting for more messages only adds latency when a batch arrives all at once.
    "producer_linger": 0.0,
    # Faust's fetch loop takes every record its client holds at once: with settlement behind a backlog
    # of 100,000 payouts, 55,000 decoded records were held at a time (peak RSS 262 -> 214 MB with 500).
    "broker_max_poll_records": 500,
}


def create_app(settings: Settings) -> PipelineApp:
    """A Faust app for `settings`: broker, credentials, store, web port and the local profile."""
    timing = group_timing(settings)
    app = PipelineApp(
        settings.app_id,
        settings=settings,
        broker=broker_urls(settings),
        broker_credentials=broker_credentials(settings),
        broker_session_timeout=timing["session"],
        broker_rebalance_timeout=timing["rebalance"],
        broker_heartbeat_interval=timing["heartbeat"],
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
