"""The Faust app, configured from the settings. It knows nothing of topics, agents or views.

`create_app` is called once by the composition root (`worker.main`); the stages receive the app as
an argument and never import this module's caller, which would load the app twice.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import faust
from faust.app.base import BootStrategy
from faust.types import TopicT
from mode import Service, ServiceT

from worker.settings import Settings


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
    """Faust's worker without its start-up spinner.

    At a log level of warning or above the spinner sets the root logger to DEBUG, so that every
    library's debug line (aiokafka logs each message it sends) is built and then dropped: a tenth
    of the hot path's time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None


class PipelineApp(faust.App):
    """A Faust app that creates every pipeline topic at start-up, not only its internal ones."""

    BootStrategy = _Boot

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.topics_to_create: list[TopicT] = []
        self.stage_services: list[ServiceT] = []

    async def on_first_start(self) -> None:
        # Faust creates DATA_DIR itself but not its parents (the default is .data/<app>-<port>).
        self.conf.datadir.parent.mkdir(parents=True, exist_ok=True)
        await super().on_first_start()

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
    return PipelineApp(
        settings.app_id,
        broker=broker_urls(settings),
        broker_credentials=broker_credentials(settings),
        broker_session_timeout=session,
        broker_rebalance_timeout=session,
        broker_heartbeat_interval=min(3.0, session / 4),
        store=settings.table_store,
        datadir=str(settings.datadir),
        topic_partitions=settings.topic_partitions,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        web_host="127.0.0.1" if settings.web_bind in {"0.0.0.0", "127.0.0.1"} else settings.web_bind,
        web_stats_enabled=False,
        web_graph_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        autodiscover=False,
        Worker=_Worker,
        **THROUGHPUT,
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
    """A TLS context trusting `KAFKA_SSL_CAFILE` (or the system CAs), with an optional client cert."""
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if settings.kafka_ssl_certfile:
        keyfile = str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None
        context.load_cert_chain(str(settings.kafka_ssl_certfile), keyfile)
    return context
