"""The composition root: every feature and the one list of stages, and how a worker process starts.

python -m worker                     # a worker (with the embedded broker if no cluster is set)
faust -A worker.main worker -l info  # the same through Faust's own CLI

Both go through `prepare`: settings, then the embedded broker or the connection check, then `build`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from worker import journey, payouts, review, settlement
from worker.broker import HOST, BrokerProcess, embedded
from worker.errors import StreamlineError
from worker.runtime import context, shutdown
from worker.runtime.app import PipelineApp, start_line
from worker.runtime.connect import check_connection
from worker.runtime.context import Agent, Context
from worker.runtime.observer import Observer
from worker.runtime.stats import Counts
from worker.runtime.topics import Topics
from worker.settings import Settings, load_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pipeline:
    """The assembled app and the parts tests and commands need to reach."""

    app: PipelineApp
    topics: Topics
    agents: dict[str, Agent]
    observer: Observer


def build(settings: Settings) -> Pipeline:
    """Assemble the app: the features, then the stages in flow order, run by the runtime."""
    ctx = context.context(settings)
    payouts.register(ctx)
    reviews = review.register(ctx)
    ledger = settlement.register(ctx)
    journey.register(ctx, reviews, ledger)
    stages = [
        payouts.orders_to_payouts(ctx),
        payouts.screening(ctx),
        review.intake(ctx, reviews),
        review.hold(ctx, reviews),
        review.decisions(ctx, reviews),
        review.seller_history(ctx, reviews),
        settlement.settlement(ctx, ledger),
    ]
    # Dead letters go back only to topics whose stages validate what they read (never to an outcome).
    replayable = ("orders", "payouts", "payouts-review", "review-decisions")
    agents = context.start(ctx, stages, summary=summary(ctx), replayable=replayable)
    return Pipeline(ctx.app, ctx.topics, agents, ctx.observer)


def summary(ctx: Context) -> Callable[[Counts, float], str]:
    """The line a person reads every ten seconds: what came in, what came out, what waits."""
    orders, sections = ctx.topics.orders.get_topic_name(), ctx.observer.sections

    def line(counts: Counts, seconds: float) -> str:
        taken, outcomes = counts.consumed[orders], counts.outcomes
        waiting = sections["reviews"]()["pending"]
        return (
            f"last {seconds:.0f} s: {taken} orders ({taken / max(seconds, 1e-9):.1f}/s), "
            f"{outcomes['approved']} approved, {outcomes['review']} held for review, "
            f"{outcomes['rejected']} rejected, {counts.dead_letters} dead letters; "
            f"{waiting} waiting for review here"
        )

    return line


@contextlib.contextmanager
def prepare(settings: Settings, worker: bool) -> Iterator[tuple[Settings, str | None]]:
    """The settings a command runs with, and how the start line names the broker.

    For a worker without `KAFKA_BOOTSTRAP_SERVERS`: the embedded broker, started here and stopped
    after the worker (a worker whose broker dies gives up at once); with a cluster: the connection
    check, so that a refusal is one line. Other commands (replay, reviews...) talk to the broker a
    running `make run` started.
    """
    if not settings.embedded_broker:
        if worker:
            check_connection(settings)
        yield settings, None
        return
    if not worker:
        yield settings.with_embedded_broker(f"{HOST}:{settings.embedded_broker_port}"), None
        return
    broker = _start_embedded(settings)
    try:
        label = f"{broker.bootstrap_servers} (embedded {broker.label})"
        yield settings.with_embedded_broker(broker.bootstrap_servers), label
    finally:
        _stop_after_worker(broker)(*sys.exc_info())


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
        with prepare(settings, "worker" in args) as (ready, label):
            _use_uvloop()
            app = build(ready).app
            app.start_line = start_line(ready, label)
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
        try:
            prepared = prepare(load_settings(), worker="worker" in sys.argv)
            settings, label = prepared.__enter__()
            atexit.register(prepared.__exit__, None, None, None)
        except StreamlineError as exc:
            raise SystemExit(f"streamline: {exc}") from None
        _use_uvloop()  # as `python -m worker` does; Faust's CLI would need `-L uvloop` for it
        _cli_app = build(settings).app
        _cli_app.start_line = start_line(settings, label)
    return _cli_app
