"""The worker's orders -> payouts hop alone: the worker's own app and stage, nothing downstream.

Run with the same environment as `python -m worker` (`python -m bench.hop`).
"""

from __future__ import annotations

import sys

from worker.app import create_app
from worker.flow import orders_to_payouts
from worker.main import _use_uvloop
from worker.publish import Publisher
from worker.settings import load_settings
from worker.topics import declare_topics


def main() -> None:
    settings = load_settings()
    _use_uvloop()
    app = create_app(settings)
    topics = declare_topics(app, settings)
    orders_to_payouts.register(app, topics, Publisher(topics.dead_letters), settings)
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level]
    app.main()


if __name__ == "__main__":
    main()
