"""Helpers for the review tests: hold payouts through the real pipeline, call the review API."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

from tests.kafka import produce
from worker.main import Pipeline
from worker.payouts.rules import payout_id_for

#: The shared REVIEW_API_TOKEN of most review tests: its decisions are recorded as `alice`.
TOKEN = "review-t0ken-for-tests"
SHARED = {"review_api_token": TOKEN, "review_api_reviewer": "alice"}
#: Reviewers with their own token, in a tokens file (`tokens_file`).
TOKENS = {"bob": "bobs-own-t0ken", "carol": "carols-own-t0ken"}
T = TypeVar("T")


def tokens_file(directory: Path) -> Path:
    """A REVIEW_TOKENS_FILE for TOKENS, as `reviewers add` writes it: names and SHA-256 hashes only."""
    path = directory / "reviewers"
    lines = [f"{name}:{hashlib.sha256(token.encode()).hexdigest()}" for name, token in TOKENS.items()]
    path.write_text("# name:sha256(token)\n" + "\n".join(lines) + "\n")
    return path


def big_order(order_id: str, seller: str = "s-1", amount: str = "2000.00") -> bytes:
    """An order whose payout is above the tests' review threshold (500)."""
    return orjson.dumps(
        {
            "order_id": order_id,
            "seller_id": seller,
            "customer_id": "c-1",
            "amount": amount,
            "currency": "EUR",
            "created_at": "2026-11-28T10:00:00Z",
        }
    )


async def hold(
    bootstrap: str, pipeline: Pipeline, order_ids: list[str], port: int | None = None, token: str = TOKEN
) -> list[str]:
    """Send big orders and return their payout ids once the API lists them all as pending."""
    orders = pipeline.topics.orders.get_topic_name()
    await produce(
        bootstrap, orders, [(b"s-1", big_order(o, seller=f"s-{n}")) for n, o in enumerate(order_ids)]
    )
    payout_ids = [payout_id_for(f"s-{n}", order_id) for n, order_id in enumerate(order_ids)]
    listed = port or web_port(pipeline)
    await until(lambda: pending_ids(listed, token), lambda ids: set(payout_ids) <= set(ids))
    return payout_ids


def web_port(pipeline: Pipeline) -> int:
    return int(pipeline.app.conf.web_port)


async def call(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = TOKEN,
    body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One request to a worker's web server: the status and the decoded JSON answer."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, data=data) as response,
    ):
        return response.status, await response.json(content_type=None)


async def decide(
    port: int, payout_id: str, decision: str, reason: str = "checked", token: str = TOKEN
) -> tuple[int, Any]:
    """Approve or reject through the API, as the reviewer `token` belongs to (`alice` by default)."""
    return await call(port, "POST", f"/reviews/{payout_id}/{decision}", token=token, body={"reason": reason})


async def pending_ids(port: int, token: str = TOKEN) -> list[str]:
    status, page = await call(port, "GET", "/reviews?limit=500", token=token)
    return [r["payout"]["payout_id"] for r in page["reviews"]] if status == 200 else []


async def stats(port: int) -> dict[str, Any]:
    return (await call(port, "GET", "/stats", token=None))[1]  # type: ignore[no-any-return]


async def until(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float = 45.0, every: float = 0.2
) -> T:
    """Call `probe` until `done(result)` holds; fail with the last result after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"gave up after {timeout}s; last: {result!r}"
        await asyncio.sleep(every)
