"""GET /healthz (the process answers) and GET /readyz (assigned, recovered, no stalled agent).

For orchestrators: /healthz is the liveness probe (200 whenever the event loop answers), /readyz the
readiness probe (200 when ready, 503 with the reason otherwise). See `worker.progress`.
"""

from __future__ import annotations

import time

from faust import web
from faust.types import AppT

from worker.runtime.progress import Progress


def register(app: AppT, progress: Progress) -> None:
    """Add `/healthz` and `/readyz` to `app`."""
    started = time.monotonic()

    @app.page("/healthz")
    async def healthz(view: web.View, request: web.Request) -> web.Response:
        """The worker process is alive and its event loop answers."""
        return view.json({"alive": True, "uptime_s": round(time.monotonic() - started, 1)})

    @app.page("/readyz")
    async def readyz(view: web.View, request: web.Request) -> web.Response:
        """Ready: partitions assigned, tables recovered, and no agent stalled with lag."""
        readiness = progress.readiness()
        return view.json(readiness, status=200 if readiness["ready"] else 503)
