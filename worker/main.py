"""The composition root: builds the app with every stage and view, and runs it.

python -m worker                     # a worker (with the embedded broker if no cluster is set)
faust -A worker.main worker -l info  # the same through Faust's own CLI
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from dataclasses import dataclass
from typing import Any

from faust.types import AgentT

from worker.app import PipelineApp, create_app
from worker.batches import BatchAgent
from worker.broker import EmbeddedBroker, find_tansu
from worker.errors import StreamlineError
from worker.flow import orders_to_payouts, screening, storefront
from worker.publish import Publisher
from worker.settings import Settings, load_settings
from worker.topics import Topics, declare_topics
from worker.web import stats


@dataclass(frozen=True)
class Pipeline:
    """The assembled app and the parts tests and commands need to reach."""

    app: PipelineApp
    topics: Topics
    agents: dict[str, AgentT[Any] | BatchAgent]


def build(settings: Settings) -> Pipeline:
    """Assemble the app: topics, publisher, stages in flow order, web views."""
    app = create_app(settings)
    topics = declare_topics(app, settings)
    publisher = Publisher(topics.dead_letters)
    agents: list[AgentT[Any] | BatchAgent] = [
        orders_to_payouts.register(app, topics, publisher, settings),
        screening.register(app, topics, publisher, settings),
    ]
    storefront.register(app, topics, publisher, settings)
    sections: dict[str, stats.Section] = {}  # features add their part of /stats here
    stats.register(app, topics, agents, sections)
    return Pipeline(app, topics, {agent.name: agent for agent in agents})


def embedded_broker(settings: Settings) -> EmbeddedBroker:
    """An (unstarted) embedded broker as the settings describe it."""
    return EmbeddedBroker(
        find_tansu(settings.tansu_bin),
        settings.embedded_broker_port,
        log_path=settings.datadir / "tansu.log",
    )


def run(argv: list[str] | None = None) -> None:
    """`python -m worker [faust command ...]`: a worker by default; exits 2 with one line on error."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
        args = args or ["worker", "--loglevel", settings.log_level]
        with contextlib.ExitStack() as stack:
            if settings.embedded_broker and args[0] == "worker":
                broker = stack.enter_context(embedded_broker(settings))
                settings = settings.with_embedded_broker(broker.bootstrap_servers)
            _use_uvloop()
            app = build(settings).app
            sys.argv = [sys.argv[0], *args]
            app.main()
    except StreamlineError as exc:
        print(f"streamline: {exc}", file=sys.stderr)
        sys.exit(2)


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
            settings = load_settings()
            if settings.embedded_broker:
                broker = embedded_broker(settings).start()
                atexit.register(broker.stop)
                settings = settings.with_embedded_broker(broker.bootstrap_servers)
        except StreamlineError as exc:
            raise SystemExit(f"streamline: {exc}") from None
        _use_uvloop()  # as `python -m worker` does; Faust's CLI would need `-L uvloop` for it
        _cli_app = build(settings).app
    return _cli_app
