"""Moving a partition past the message it stopped at (`PROCESSING_ERRORS=stop`): an operator's action.

POST /partitions/{topic}/{partition}/skip   {"offset": N, "reason": "..."}  (a reviewer's token)
python -m worker skip TOPIC PARTITION OFFSET --reason "..." [--url http://worker:6066]

The message goes to `dead-letters` as `processing_error`, with the error of each stage stopped at it,
who skipped it and why; then each of those stages goes on past it, and it is committed once every
stage that received it is done with it. A stream stage that fails on it later (it had not reached it)
dead-letters it with its own error, without stopping; stages stopped at other messages of the partition stay
stopped, and the partition stays paused until the last of them is skipped. `/readyz` of the worker
that stopped names the partition, the offset and the stage; ask that worker.
"""

from __future__ import annotations

from typing import Any

import click
import orjson
from faust import web
from faust.cli import AppCommand, argument, option

from worker.runtime.app import PipelineApp
from worker.runtime.auth import requires_token, reviewers_from
from worker.runtime.client import call
from worker.runtime.halts import Halts
from worker.runtime.publish import Publisher
from worker.settings import Settings


def register(app: PipelineApp, publisher: Publisher, halts: Halts, settings: Settings) -> None:
    """Add the skip view and the `skip` command to `app`."""

    @app.page("/partitions/{topic}/{partition}/skip", name="skip")
    class Skip(web.View):
        @requires_token(reviewers_from(settings), as_reviewer=True)
        async def post(self, request: web.Request, topic: str, partition: str, reviewer: str) -> web.Response:
            """Dead-letter the message `topic[partition]` stopped at, and go on past it in every stage."""
            try:
                offset, reason = _skip_request(await request.read(), partition)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            try:
                skipped = await halts.skip(
                    topic, int(partition), offset, reason=reason, by=reviewer, publisher=publisher
                )
            except LookupError as exc:
                return self.json({"error": str(exc)}, status=404)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=409)
            stages = [halt.stage for halt in skipped]
            return self.json({"skipped": {**skipped[0].describe(), "stages": stages}, "reason": reason})

    @app.command(
        argument("topic"),
        argument("partition", type=int),
        argument("offset", type=int),
        option("--reason", required=True, help="Why the message is skipped (kept in its dead letter)."),
        option("--url", default=f"http://127.0.0.1:{settings.web_port}", show_default=True, help="Worker."),
    )
    async def skip(self: AppCommand, topic: str, partition: int, offset: int, **options: Any) -> None:
        """Dead-letter the message a stopped partition is at, and let its stage go on."""
        token = (settings.review_token or settings.review_api_token).get_secret_value()
        path = f"/partitions/{topic}/{partition}/skip"
        body = {"offset": offset, "reason": options["reason"]}
        try:
            status, answer = await call(options["url"], token, "POST", path, body)
        except click.ClickException as error:
            raise SystemExit(f"skip: {error.format_message()}") from None
        if status != 200:
            raise SystemExit(f"skip: HTTP {status}: {answer.get('error', answer)}")
        stages = ", ".join(answer.get("skipped", {}).get("stages", []))  # an older worker names none
        click.echo(
            f"skipped {topic}[{partition}]@{offset}: dead-lettered, the partition goes on"
            + (f" (stages: {stages})" if stages else "")
        )


def _skip_request(body: bytes, partition: str) -> tuple[int, str]:
    """The offset and reason of a skip request, or ValueError saying what is wrong."""
    if not partition.isdigit():
        raise ValueError("the partition must be a whole number")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError('send {"offset": N, "reason": "..."}') from None
    offset, reason = (
        (document.get("offset"), document.get("reason")) if isinstance(document, dict) else (None, None)
    )
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**63:
        raise ValueError("offset must be a whole number, 0 or more")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a reason is required")
    return offset, reason.strip()[:2000]
