"""The composition root: builds the app with every stage and view, and runs it.

python -m worker                     # a worker (with the embedded broker if no cluster is set)
faust -A worker.main worker -l info  # the same through Faust's own CLI
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from faust.types import AgentT, TopicT

from worker import cli, progress, replay, shutdown
from worker.app import PipelineApp, create_app, start_line
from worker.batches import BatchAgent
from worker.broker import HOST, BrokerProcess, embedded
from worker.connect import check_connection
from worker.errors import StreamlineError
from worker.flow import (
    escalation,
    orders_to_payouts,
    review,
    screening,
    seller_history,
    settlement,
    storefront,
)
from worker.metrics import DomainMetrics
from worker.publish import Publisher
from worker.runtime.engine import start_stage
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.stage import ErrorPolicy
from worker.settings import Settings, load_settings
from worker.stats import ledger_totals
from worker.tables import ReviewTables, declare_tables, settlement_ledger
from worker.topics import Topics, declare_topics
from worker.web import dashboard, health, partitions, reviews, stats
from worker.web import metrics as metrics_view

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pipeline:
    """The assembled app and the parts tests and commands need to reach."""

    app: PipelineApp
    topics: Topics
    agents: dict[str, AgentT[Any] | BatchAgent]
    metrics: DomainMetrics


def build(settings: Settings) -> Pipeline:
    """Assemble the app: topics, publisher, stages in flow order, web views."""
    app = create_app(settings)
    topics = declare_topics(app, settings)
    publisher = Publisher(topics.dead_letters)
    tables = declare_tables(app, settings)
    ledger, outcomes = settlement_ledger(app, settings), Counter[str]()
    observer, halts = Observer(), Halts()
    stages = [
        orders_to_payouts.stage(topics, settings),
        screening.stage(topics, settings),
        *review.stages(topics, tables),
        seller_history.stage(topics, tables),
        settlement.stage(app, topics, ledger, outcomes),
    ]
    policy = ErrorPolicy(settings.processing_errors)
    agents = [
        start_stage(app, stage, publisher=publisher, policy=policy, observer=observer, halts=halts)
        for stage in stages
    ]
    storefront.register(app, topics, publisher, settings)
    escalation.register(app, topics, publisher, tables, settings)
    tracker = progress.register(app, settings.stall_timeout_s, halts)
    for agent in agents:
        if isinstance(agent, BatchAgent):
            tracker.watch(agent)
    health.register(app, tracker)
    metrics = metrics_view.register(app, topics, tracker, observer)
    sections: dict[str, stats.Section] = {  # features add their part of /stats here
        "ledger": lambda: ledger_totals(ledger.values(), _owned(app, topics.payouts_approved), outcomes),
        "processing_errors": lambda: dict(observer.processing_errors),
        "readiness": tracker.readiness,
        "reviews": lambda: tables.summary(datetime.now(UTC)),
    }
    metrics.reviews_from(*_review_gauges(tables))
    stats.register(app, topics, agents, sections)
    reviews.register(app, topics, publisher, tables, settings)
    partitions.register(app, publisher, halts, settings)
    dashboard.register(app)
    cli.register(app, settings)
    replay.register(app, topics)
    return Pipeline(app, topics, {agent.name: agent for agent in agents}, metrics)


def _review_gauges(tables: ReviewTables) -> tuple[Callable[[], float], Callable[[], float]]:
    def summary() -> dict[str, Any]:
        return tables.summary(datetime.now(UTC))

    return (
        lambda: float(summary()["pending"]),
        lambda: float(summary()["oldest_pending_age_s"] or 0.0),
    )


def _owned(app: PipelineApp, topic: TopicT) -> set[int]:
    name = topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}


def embedded_broker(settings: Settings) -> BrokerProcess:
    """An (unstarted) embedded broker as the settings describe it, its log and data in DATA_DIR."""
    name = settings.embedded_broker_name
    binary = settings.tansu_bin if name == "tansu" else settings.noida_bin
    return embedded(name, settings.embedded_broker_port, settings.datadir, binary)


def run(argv: list[str] | None = None) -> None:
    """`python -m worker [faust command ...]`: a worker by default; exits 2 with one line on error."""
    args = list(sys.argv[1:] if argv is None else argv)
    settings: Settings | None = None
    try:
        settings = load_settings()
        args = args or _worker_args(settings)
        with contextlib.ExitStack() as stack:
            label = None  # how the start line names the broker
            if settings.embedded_broker:
                # Other commands (replay, reviews...) talk to the broker a running `make run` started.
                address = f"{HOST}:{settings.embedded_broker_port}"
                if "worker" in args:
                    broker = _start_embedded(settings)
                    stack.push(_stop_after_worker(broker))
                    address = broker.bootstrap_servers
                    label = f"{address} (embedded {broker.label})"
                settings = settings.with_embedded_broker(address)
            elif "worker" in args:
                check_connection(settings)
            _use_uvloop()
            app = build(settings).app
            app.start_line = start_line(settings, label)
            sys.argv = [sys.argv[0], *args]
            app.main()
    except StreamlineError as exc:
        as_json = settings is not None and settings.log_format == "json"
        print(_error_line(str(exc), as_json), file=sys.stderr)
        sys.exit(2)


def _start_embedded(settings: Settings) -> BrokerProcess:
    """Start the embedded broker; a worker whose broker dies under it gives up at once."""
    broker = embedded_broker(settings).start()
    shutdown.on_give_up(lambda: broker.stop(timeout=1), gone=broker.exited)
    broker.watch(
        lambda how: shutdown.give_up(f"the embedded {broker.name} broker {how}: the worker cannot go on")
    )
    return broker


def _stop_after_worker(broker: BrokerProcess) -> Callable[..., None]:
    # The last line of a worker run: the worker is done, then the broker it was using stops.
    def stop(kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        broker.stop()
        ended = f" (exit code {exc.code})" if isinstance(exc, SystemExit) else ""
        logger.info("worker stopped%s; embedded %s broker stopped", ended, broker.name)

    return stop


def _error_line(message: str, as_json: bool) -> str:
    if as_json:
        return orjson.dumps({"level": "error", "logger": "streamline", "message": message}).decode()
    return f"streamline: {message}"


def _worker_args(settings: Settings) -> list[str]:
    # JSON logs: no banner table on stdout, so that every line of output is one JSON object.
    # No banner table: the worker says what matters in its start line (and JSON logs stay JSON lines).
    return ["--quiet", "worker", "--loglevel", settings.log_level]


def _use_uvloop() -> None:
    # Must happen before the app creates its loop; `faust -L uvloop` is ignored under app.main().
    import uvloop

    uvloop.install()


_cli_app: PipelineApp | None = None


def __getattr__(name: str) -> Any:
    """`faust -A worker.main` asks for `app`: build it then, not at import."""
    global _cli_app
    if name != "app":
        raise AttributeError(name)
    if _cli_app is None:
        embedded: BrokerProcess | None = None
        try:
            settings = load_settings()
            if settings.embedded_broker:
                broker = embedded = _start_embedded(settings)
                atexit.register(_stop_after_worker(broker), None, None, None)
                settings = settings.with_embedded_broker(broker.bootstrap_servers)
            else:
                check_connection(settings)
        except StreamlineError as exc:
            raise SystemExit(f"streamline: {exc}") from None
        _use_uvloop()  # as `python -m worker` does; Faust's CLI would need `-L uvloop` for it
        _cli_app = build(settings).app
        if embedded is not None:
            _cli_app.start_line = start_line(
                settings, f"{broker.bootstrap_servers} (embedded {broker.label})"
            )
    return _cli_app
