"""GET /reviews across workers: each worker knows only the payouts of its own partitions, so the
worker asked collects the others' oldest ones (`?scope=local`) and merges them, oldest first."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from faust import web

from worker.review.records import PendingReview
from worker.review.rules import latest_decisions, oldest_first
from worker.review.tables import ReviewTables
from worker.runtime.app import PipelineApp
from worker.runtime.peers import Answer, ask_others, unreachable

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
    """The pending payouts and latest decisions of this worker, and of all workers together."""

    def __init__(self, app: PipelineApp, tables: ReviewTables) -> None:
        self.app = app
        self.tables = tables

    def local(self, offset: int, limit: int, overdue: bool = False) -> dict[str, Any]:
        """The payouts of this worker's partitions that may be on the page, and how many wait here."""
        pending = oldest_first(self.tables.owned_pending(overdue))
        return {"total": len(pending), "reviews": pending[: offset + limit]}

    async def everywhere(
        self, request: web.Request, offset: int, limit: int, overdue: bool = False
    ) -> dict[str, Any]:
        """One page of the pending payouts of every worker, longest waiting first."""
        query = {"offset": offset, "limit": limit, "overdue": int(overdue)}
        answers = await self.others(request, "/reviews", query)
        remote = [_pending(body) for _, body in answers if body is not None]
        parts = [self.local(offset, limit, overdue), *remote]
        merged = oldest_first(review for part in parts for review in part["reviews"])
        return {
            "total": sum(part["total"] for part in parts),
            "offset": offset,
            "limit": limit,
            "reviews": merged[offset : offset + limit],
            "unreachable_workers": unreachable(answers),
        }

    async def decided(self, request: web.Request) -> dict[str, Any]:
        """The latest decisions of every worker, newest first."""
        answers = await self.others(request, "/decisions", {})
        lines = [*self.tables.owned_decisions()]
        for _, body in answers:
            lines += body["decisions"] if body is not None else []
        return {"decisions": latest_decisions(lines), "unreachable_workers": unreachable(answers)}

    async def others(self, request: web.Request, path: str, query: dict[str, Any]) -> list[Answer]:
        """What every other worker answers to `path?scope=local&query` (None: it did not answer)."""
        token = request.headers.get("Authorization", "")
        return await ask_others(self.app, self.tables.pending, path, token, query)


def _pending(body: dict[str, Any]) -> dict[str, Any]:
    return {"total": body["total"], "reviews": [PendingReview.from_data(r) for r in body["reviews"]]}
