"""`payouts show`: a payout's journey from a terminal, as the API answers it.

    python -m worker payouts show po-...           # one payout
    python -m worker payouts show o-123            # every payout of an order (unique per seller only)
    python -m worker payouts show s-7 --seller     # a seller's latest payouts
    python -m worker payouts show po-... --json    # the API's JSON

Talks to http://127.0.0.1:WEB_PORT unless --url says otherwise, with REVIEW_TOKEN (or REVIEW_API_TOKEN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import click
import orjson
from faust.cli import AppCommand, argument, option

from worker.payouts.rules import is_payout_id
from worker.runtime.app import PipelineApp
from worker.runtime.client import call
from worker.runtime.logs import printable
from worker.settings import Settings


def register(app: PipelineApp, settings: Settings) -> None:
    """Add the `payouts` command to `app`'s command line."""

    @app.command(
        argument("action", type=click.Choice(["show"])),
        argument("key"),
        option("--seller", is_flag=True, default=False, help="KEY is a seller id."),
        option("--json", "as_json", is_flag=True, default=False, help="Print the API's JSON."),
        option("--url", default=f"http://127.0.0.1:{settings.web_port}", show_default=True, help="Worker."),
    )
    async def payouts(self: AppCommand, action: str, key: str, **options: Any) -> None:
        """Show a payout's journey: payouts show PAYOUT_ID | ORDER_ID | SELLER_ID --seller"""
        try:
            click.echo(await show(settings, key, options))
        except click.ClickException as error:
            click.echo(f"payouts: {printable(error.format_message())}", err=True)
            raise SystemExit(error.exit_code) from None


async def show(settings: Settings, key: str, options: Mapping[str, Any]) -> str:
    """What `payouts show` prints, or a ClickException."""
    token = (settings.review_token or settings.review_api_token).get_secret_value()
    if not token:
        raise click.UsageError("set REVIEW_TOKEN to your review token (`reviewers add` printed it)")
    kind = "sellers" if options.get("seller") else "payouts" if is_payout_id(key) else "orders"
    status, answer = await call(options["url"], token, "GET", f"/{kind}/{quote(key, safe='')}", None)
    if status >= 400:
        raise click.ClickException(f"HTTP {status}: {answer.get('error', answer)}")
    if options.get("as_json"):
        return orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode()
    found = [answer] if kind == "payouts" else answer["payouts"]
    return "\n\n".join(describe(journey) for journey in found) or f"no payouts for {printable(key)}"


def describe(journey: Mapping[str, Any]) -> str:
    """A journey as lines a person reads; whatever the data holds is escaped."""
    j = _Get(journey)
    lines = [
        f"payout {j('payout_id')}: {j('status')}",
        f"  order       {j('order_id')} of seller {j('seller_id')}, customer {j('customer_id')}",
        f"  trace       {j('trace_id')}",
        f"  read from   {j('order', 'topic')}[{j('order', 'partition')}]@{j('order', 'offset')}, "
        f"created {j('order', 'created_at')}",
        f"  fee         {j('fee', 'gross')} {j('currency')} x {j('fee', 'rate')} + {j('fee', 'fixed')} "
        f"= {j('fee', 'fee')}; net {j('fee', 'net')} (computed {j('computed_at')})",
        f"  screening   {j('screening', 'outcome')} (threshold {j('screening', 'threshold')}) "
        f"at {j('screening', 'at')}",
    ]
    if journey.get("review"):
        lines += [
            f"  review      held {j('review', 'held_at')}, escalated {j('review', 'escalated_at')}",
            f"              {j('review', 'decision')} by {j('review', 'decided_by')} "
            f"at {j('review', 'decided_at')}: {j('review', 'reason')}",
        ]
    steps = ", ".join(f"{s['step']} {s['at']}" for s in (journey.get("settlement") or {}).get("steps", []))
    lines.append(f"  settlement  {j('settlement', 'state')}" + (f": {printable(steps)}" if steps else ""))
    return "\n".join(lines)


class _Get:
    """A value of a journey, as text: `-` when unknown, control characters escaped."""

    def __init__(self, journey: Mapping[str, Any]) -> None:
        self.journey = journey

    def __call__(self, *path: str) -> str:
        value: Any = self.journey
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        return "-" if value is None else printable(str(value))
