"""The worker's orders -> payouts hop alone: the worker's own app and stage, nothing downstream.

Run with the same environment as `python -m worker` (`python -m bench.hop`).
"""

from __future__ import annotations

import sys

from worker.app import create_app
from worker.flow import orders_to_payouts
from worker.main import _use_uvloop
from worker.publish import Publisher
from worker.runtime.engine import start_stage
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.stage import ErrorPolicy
from worker.settings import load_settings
from worker.topics import declare_topics


def main() -> None:
    settings = load_settings()
    _use_uvloop()
    app = create_app(settings)
    topics = declare_topics(app, settings)
    stage = orders_to_payouts.stage(topics, settings)
    publisher, policy = Publisher(topics.dead_letters), ErrorPolicy(settings.processing_errors)
    start_stage(app, stage, publisher=publisher, policy=policy, observer=Observer(), halts=Halts())
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level]
    app.main()


if __name__ == "__main__":
    main()
