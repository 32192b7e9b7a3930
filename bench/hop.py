"""The worker's orders -> payouts hop alone: the worker's own app and stage, nothing downstream.

Run with the same environment as `python -m worker` (`python -m bench.hop`).
"""

from __future__ import annotations

import sys

from worker import payouts
from worker.main import _use_uvloop
from worker.runtime import context
from worker.settings import load_settings


def main() -> None:
    settings = load_settings()
    _use_uvloop()
    ctx = context.context(settings)
    context.start(ctx, [payouts.orders_to_payouts(ctx)])
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level]
    ctx.app.main()


if __name__ == "__main__":
    main()
