"""GET /: the reviewer's page. Static HTML, CSS and JS served by the worker: no build step, no CDN.

The page polls `/stats` (open) and `/reviews` (with the token the reviewer typed, kept in the tab's
sessionStorage) and posts decisions to `/reviews/{payout_id}/approve|reject`.
"""

from __future__ import annotations

from pathlib import Path

from faust import web

from worker.runtime.app import PipelineApp

STATIC = Path(__file__).parent / "static"
#: Scripts and styles only from this worker: a payout field can never run as code on the page.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def register(app: PipelineApp) -> None:
    """Serve the dashboard at `/` and its assets under `/static/`."""
    page = (STATIC / "dashboard.html").read_text(encoding="utf-8")

    @app.page("/", name="dashboard")
    async def dashboard(view: web.View, request: web.Request) -> web.Response:
        """The review dashboard."""
        return view.html(page, headers=dict(HEADERS))

    app.web.add_static("/static/", STATIC)
