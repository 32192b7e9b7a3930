"""GET /reviews across workers: each worker knows only the payouts of its own partitions, so the
worker asked collects the others' oldest ones (`?scope=local`) and merges them, oldest first."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from faust import web
from yarl import URL

from worker.review.records import PendingReview
from worker.review.rules import oldest_first
from worker.review.tables import ReviewTables
from worker.runtime.app import PipelineApp

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Far beyond any real list; it keeps `offset` a number every JSON encoder writes (orjson: 64 bits).
MAX_OFFSET = 1_000_000
#: ASCII digits only: `int()` also reads `1_0`, ` 5 `, `+5` and non-ASCII digits.
_WHOLE = re.compile(r"[0-9]{1,7}")


def paging(query: Mapping[str, str]) -> tuple[int, int]:
    """`offset` and `limit` from the query string, or ValueError saying what is wrong."""
    offset, limit = query.get("offset", "0"), query.get("limit", str(DEFAULT_LIMIT))
    if not (_WHOLE.fullmatch(offset) and _WHOLE.fullmatch(limit)):
        raise ValueError("offset and limit must be whole numbers")
    if int(offset) > MAX_OFFSET or not 1 <= int(limit) <= MAX_LIMIT:
        raise ValueError(f"offset must be 0 to {MAX_OFFSET} and limit between 1 and {MAX_LIMIT}")
    return int(offset), int(limit)


class Listing:
    """The pending payouts of this worker, and of all workers together."""

    def __init__(self, app: PipelineApp, tables: ReviewTables) -> None:
        self.app = app
        self.tables = tables

    def local(self, offset: int, limit: int) -> dict[str, Any]:
        """The payouts of this worker's partitions that may be on the page, and how many wait here."""
        pending = oldest_first(self.tables.owned_pending())
        return {"total": len(pending), "reviews": pending[: offset + limit]}

    async def everywhere(self, request: web.Request, offset: int, limit: int) -> dict[str, Any]:
        """One page of the pending payouts of every worker, longest waiting first."""
        others = self._other_workers()
        token = request.headers.get("Authorization", "")
        answers = await asyncio.gather(*(self._remote(url, token, offset, limit) for url in others))
        parts = [self.local(offset, limit), *(a for a in answers if a is not None)]
        merged = oldest_first(review for part in parts for review in part["reviews"])
        unreachable = [str(url) for url, answer in zip(others, answers, strict=True) if answer is None]
        return {
            "total": sum(part["total"] for part in parts),
            "offset": offset,
            "limit": limit,
            "reviews": merged[offset : offset + limit],
            "unreachable_workers": unreachable,
        }

    def _other_workers(self) -> list[URL]:
        me = URL(str(self.app.conf.canonical_url))
        hosts = self.app.router.table_metadata(self.tables.pending.name)
        return [URL(host) for host in sorted(hosts) if URL(host) != me]

    async def _remote(self, worker: URL, token: str, offset: int, limit: int) -> dict[str, Any] | None:
        url = worker.with_path("/reviews").with_query(scope="local", offset=offset, limit=limit)
        try:
            async with self.app.http_client.get(url, headers={"Authorization": token}) as response:
                response.raise_for_status()
                body = await response.json()
        except Exception as exc:  # a worker that is down must not take the listing down with it
            logger.warning("listing: worker %s did not answer: %s", worker, type(exc).__name__)
            return None
        return {"total": body["total"], "reviews": [PendingReview.from_data(r) for r in body["reviews"]]}
