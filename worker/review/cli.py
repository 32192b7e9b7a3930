"""`reviews`: the review API from a terminal, as a Faust app command talking to a running worker;
`reviewers`: who may review (the tokens file).

    python -m worker reviews list
    python -m worker reviews approve po-... --reason "called the seller"
    python -m worker reviews reject po-... --reason "stolen card"
    python -m worker reviewers add alice         # prints alice's token, once
    python -m worker reviewers remove alice

`reviews` talks to http://127.0.0.1:WEB_PORT unless --url says otherwise, with your token,
REVIEW_TOKEN (or REVIEW_API_TOKEN); the decision names the reviewer the token belongs to.
`reviewers` edits REVIEW_TOKENS_FILE unless --file says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from faust.cli import AppCommand, argument, option

from worker import tokens
from worker.payouts.rules import is_payout_id
from worker.runtime.app import PipelineApp
from worker.runtime.client import call
from worker.runtime.logs import printable
from worker.settings import Settings

TIMEOUT_S = 30.0


def register(app: PipelineApp, settings: Settings) -> None:
    """Add the `reviews` and `reviewers` commands to `app`'s command line."""
    register_reviewers(app, settings)

    @app.command(
        argument("action", type=click.Choice(["list", "approve", "reject"])),
        argument("payout_id", required=False),
        option("--reason", help="Why (required to approve or reject)."),
        option("--url", default=f"http://127.0.0.1:{settings.web_port}", show_default=True, help="Worker."),
        option("--limit", type=int, default=50, show_default=True, help="How many to list."),
    )
    async def reviews(self: AppCommand, action: str, payout_id: str | None, **options: Any) -> None:
        """List held payouts, or approve / reject one: reviews list | reviews approve ID --reason ..."""
        try:
            click.echo(await run_review_command(settings, action, payout_id, options))
        except click.ClickException as error:
            # One line and an exit code, not the traceback Faust's worker logs for other exceptions.
            click.echo(error_line(error.format_message()), err=True)
            raise SystemExit(error.exit_code) from None


async def run_review_command(
    settings: Settings, action: str, payout_id: str | None, options: Mapping[str, Any]
) -> str:
    """Do what the command line asks and say what happened, or raise a ClickException."""
    token = (settings.review_token or settings.review_api_token).get_secret_value()
    if not token:
        raise click.UsageError("set REVIEW_TOKEN to your review token (`reviewers add` printed it)")
    method, path, body = request_for(action, payout_id, options)
    status, answer = await call(options["url"], token, method, path, body)
    if status >= 400:
        raise click.ClickException(f"HTTP {status}: {answer.get('error', answer)}")
    if action == "list":
        return listing(answer)
    return printable(f"{payout_id}: {answer['status']} by {answer['decision']['reviewer']}")


def error_line(message: str) -> str:
    """The one line a failed command prints: what the worker said may carry data, so it is escaped."""
    return f"reviews: {printable(message)}"


def request_for(action: str, payout_id: str | None, options: Mapping[str, Any]) -> tuple[str, str, Any]:
    """The HTTP method, path and JSON body for a command line, or a UsageError."""
    if action == "list":
        return "GET", f"/reviews?limit={options['limit']}", None
    if not payout_id or not options.get("reason"):
        raise click.UsageError(f"usage: reviews {action} PAYOUT_ID --reason TEXT")
    if not is_payout_id(payout_id):
        raise click.UsageError(f"not a payout id (po-<uuid>): {payout_id!r:.80}")
    return (
        "POST",
        f"/reviews/{quote(payout_id, safe='')}/{action}",
        {"reason": options["reason"]},
    )


def listing(page: Mapping[str, Any], now: datetime | None = None) -> str:
    """The pending payouts as aligned text, longest waiting first; control characters escaped."""
    now = now or datetime.now(UTC)
    lines = [f"{page['total']} payout(s) waiting for review"]
    for review in page["reviews"]:
        payout = {name: printable(str(value)) for name, value in review["payout"].items()}
        waited = now - datetime.fromisoformat(review["held_at"])
        overdue = "  OVERDUE" if review.get("escalated_at") else ""
        lines.append(
            f"{payout['payout_id']}  {payout['seller_id']:<10} {payout['net']:>12} {payout['currency']}"
            f"  waiting {duration(waited.total_seconds())}{overdue}"
        )
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def register_reviewers(app: PipelineApp, settings: Settings) -> None:
    """Add the `reviewers` command: add (or --replace) and remove reviewers in the tokens file."""

    @app.command(
        argument("action", type=click.Choice(["add", "remove", "list"])),
        argument("name", required=False),
        option("--file", "path", type=click.Path(path_type=Path), default=settings.review_tokens_file,
               help="The tokens file (default: REVIEW_TOKENS_FILE)."),
        option("--replace", is_flag=True, default=False, help="Give an existing reviewer a new token."),
    )  # fmt: skip
    async def reviewers(
        self: AppCommand, action: str, name: str | None, path: Path | None, replace: bool
    ) -> None:
        """Who may review: reviewers add NAME (prints their token once) | remove NAME | list."""
        try:
            click.echo(manage_reviewers(action, name, path, replace=replace))
        except (tokens.TokensFileError, OSError, click.UsageError) as error:
            message = error.format_message() if isinstance(error, click.UsageError) else str(error)
            click.echo(f"reviewers: {printable(message)}", err=True)
            raise SystemExit(2) from None


def manage_reviewers(action: str, name: str | None, path: Path | None, *, replace: bool = False) -> str:
    """Do what `reviewers` asks to the tokens file at `path`; what to print."""
    if path is None:
        raise click.UsageError("set REVIEW_TOKENS_FILE or give --file")
    if action == "list":
        names = sorted(tokens.read(path))
        return "\n".join(names) if names else f"no reviewers in {path}"
    if not name:
        raise click.UsageError(f"usage: reviewers {action} NAME [--file PATH]")
    if action == "remove":
        tokens.remove(path, name)
        return f"removed reviewer {name} from {path}: their token no longer works"
    token = tokens.add(path, name, replace=replace)
    done = f"gave reviewer {name} a new token" if replace else f"added reviewer {name}"
    return f"{done} in {path}. Their token, shown this once (give it to {name} only):\n{token}"
