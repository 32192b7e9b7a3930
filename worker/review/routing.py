"""Answer a review request on the worker that owns the payout, whichever worker it reached.

Faust's `@app.table_route` forwards a request to the key's owner, but without its body, so it serves
the GETs; decisions (POST with a JSON body) go through `forward`, which finds the owner in the same
routing table (Faust's partition assignor metadata) and sends the body along.
"""

from __future__ import annotations

from faust import web
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from worker.review.tables import ReviewTables
from worker.runtime.app import PipelineApp

#: Marks a forwarded request, so that two workers that disagree during a rebalance never ping-pong.
FORWARDED = "X-Streamline-Forwarded"
_KEPT_HEADERS = ("Authorization", "Content-Type")


def owner_of(app: PipelineApp, tables: ReviewTables, payout_id: str) -> URL | None:
    """The web address of the worker that owns `payout_id`, or None when it is this one."""
    if tables.owns(payout_id):
        return None
    changelog = tables.pending.changelog_topic.get_topic_name()
    partition = tables.partition_of(payout_id)
    for host, assigned in app.router.table_metadata(tables.pending.name).items():
        if partition in assigned.get(changelog, ()) and URL(host) != URL(str(app.conf.canonical_url)):
            return URL(host)
    raise ServiceUnavailable("no worker owns this payout right now (rebalancing): try again")


async def forward(
    app: PipelineApp, view: web.View, request: web.Request, owner: URL, body: bytes
) -> web.Response:
    """Send `request` (with `body`) to the worker at `owner` and answer with what it answers."""
    if request.headers.get(FORWARDED):
        raise ServiceUnavailable("the payout's partition is moving between workers: try again")
    url = request.url.with_scheme(owner.scheme).with_host(owner.host or "").with_port(owner.port)
    headers = {name: request.headers[name] for name in _KEPT_HEADERS if name in request.headers}
    headers[FORWARDED] = "1"
    async with app.http_client.request(request.method, url, headers=headers, data=body) as response:
        return view.bytes(await response.read(), content_type=response.content_type, status=response.status)
