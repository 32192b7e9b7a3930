"""How the worker's commands talk to a running worker: one JSON request with a bearer token."""

from __future__ import annotations

from typing import Any

import aiohttp
import click

TIMEOUT_S = 30.0


async def call(url: str, token: str, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """Send one request to a worker's API; the status and the JSON answer."""
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(method, url.rstrip("/") + path, json=body, headers=headers) as response,
        ):
            return response.status, await response.json(content_type=None)
    except aiohttp.ClientError as exc:
        raise click.ClickException(f"no worker answers at {url}: {exc}") from None
