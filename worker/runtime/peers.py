"""Asking every other worker: the state of a partition lives on the worker that owns it, so a view that
covers all partitions (the review list, the decided tab, a journey) asks the others for their part.

A worker's part is its answer to the same path with `scope=local`; one that does not answer is named
in the result, and the view answers with what the others said.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import TableT
from yarl import URL

from worker.runtime.app import PipelineApp

logger = logging.getLogger(__name__)

#: What one worker answered (None: it did not answer).
Answer = tuple[URL, dict[str, Any] | None]


async def ask_others(
    app: PipelineApp, table: TableT[Any, Any], path: str, token: str, query: dict[str, Any]
) -> list[Answer]:
    """What every other worker that holds part of `table` answers to `path?scope=local&query`."""
    me = URL(str(app.conf.canonical_url))
    hosts = app.router.table_metadata(table.name)
    others = [URL(host) for host in sorted(hosts) if URL(host) != me]
    answers = await asyncio.gather(*(_ask(app, url, path, token, query) for url in others))
    return list(zip(others, answers, strict=True))


def unreachable(answers: list[Answer]) -> list[str]:
    """The workers that did not answer."""
    return [str(url) for url, body in answers if body is None]


async def _ask(
    app: PipelineApp, worker: URL, path: str, token: str, query: dict[str, Any]
) -> dict[str, Any] | None:
    url = worker.with_path(path).with_query(scope="local", **query)
    try:
        async with app.http_client.get(url, headers={"Authorization": token}) as response:
            response.raise_for_status()
            return await response.json()  # type: ignore[no-any-return]
    except Exception as exc:  # a worker that is down must not take the view down with it
        logger.warning("worker %s did not answer %s: %s", worker, path, type(exc).__name__)
        return None
