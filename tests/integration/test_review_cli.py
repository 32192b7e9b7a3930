"""`python -m worker reviews ...` and `reviewers ...` as an operator runs them, against a running worker."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from decimal import Decimal
from pathlib import Path

from tests.kafka import read_until
from tests.reviews import TOKENS, call, hold, tokens_file, web_port

ROOT = Path(__file__).parents[2]


async def command(*args: str, cwd: Path, **env: str) -> tuple[int, str, str]:
    """Run `python -m worker ARGS` in its own process (without blocking the worker on this loop)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REVIEW_", "WEB_"))}
    base.update({"PYTHONPATH": str(ROOT), **env})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", *args, cwd=cwd, env=base,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def reviews(*args: str, port: int, cwd: Path, token: str) -> tuple[int, str, str]:
    """`reviews ARGS` with a reviewer's own token, as REVIEW_TOKEN."""
    return await command("reviews", *args, cwd=cwd, WEB_PORT=str(port), REVIEW_TOKEN=token)


async def test_an_operator_lists_approves_and_rejects_from_the_command_line(
    bootstrap, start_pipeline, tmp_path
):
    reviewers = tokens_file(tmp_path)
    pipeline = await start_pipeline(review_tokens_file=reviewers, review_threshold=Decimal("500.00"))
    port, topics = web_port(pipeline), pipeline.topics
    bob, carol = TOKENS["bob"], TOKENS["carol"]
    first, second = await hold(bootstrap, pipeline, ["o-cli-1", "o-cli-2"], token=bob)

    code, out, _ = await reviews("list", port=port, cwd=tmp_path, token=bob)
    assert code == 0
    assert out.splitlines()[0] == "2 payout(s) waiting for review"
    assert first in out and second in out and "1941.70 EUR" in out

    approve, reject = await asyncio.gather(  # two reviewers at once, each with their own token
        reviews("approve", first, "--reason", "known seller", port=port, cwd=tmp_path, token=bob),
        reviews("reject", second, "--reason", "stolen card", port=port, cwd=tmp_path, token=carol),
    )
    assert (approve[0], approve[1].strip()) == (0, f"{first}: approved by bob")
    assert (reject[0], reject[1].strip()) == (0, f"{second}: rejected by carol")

    [approved] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool)
    [rejected] = await read_until(bootstrap, topics.payouts_rejected.get_topic_name(), bool)
    assert approved["review"] == {**approved["review"], "reason": "known seller", "reviewer": "bob"}
    assert (rejected["payout_id"], rejected["review"]["reviewer"]) == (second, "carol")

    conflict, usage, spoof = await asyncio.gather(
        reviews("reject", first, "--reason", "changed my mind", port=port, cwd=tmp_path, token=bob),
        reviews("approve", second, port=port, cwd=tmp_path, token=bob),
        reviews("approve", first, "--reason", "x", "--reviewer", "alice", port=port, cwd=tmp_path, token=bob),
    )
    assert conflict[0] == 1
    assert conflict[2].strip().splitlines() == [f"reviews: HTTP 409: payout {first} has been decided already"]
    assert usage[0] == 2 and "--reason" in usage[2] and "Traceback" not in usage[2]
    assert spoof[0] == 2 and "--reviewer" in spoof[2]  # no such option: the token says who you are


async def test_reviewers_add_prints_a_token_once_that_works_at_once_and_remove_revokes_it(
    bootstrap, start_pipeline, tmp_path
):
    reviewers = tokens_file(tmp_path)
    pipeline = await start_pipeline(review_tokens_file=reviewers, review_threshold=Decimal("500.00"))
    port = web_port(pipeline)

    code, out, err = await command("reviewers", "add", "dave", "--file", str(reviewers), cwd=tmp_path)
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert f"added reviewer dave in {reviewers}" in out and len(token) >= 40
    stored = reviewers.read_text()
    assert token not in stored and f"dave:{hashlib.sha256(token.encode()).hexdigest()}" in stored
    assert (await call(port, "GET", "/reviewer", token=token)) == (200, {"reviewer": "dave"})

    again = await command("reviewers", "add", "dave", "--file", str(reviewers), cwd=tmp_path)
    assert again[0] == 2 and "dave is a reviewer already" in again[2] and "Traceback" not in again[2]
    listed = await command("reviewers", "list", cwd=tmp_path, REVIEW_TOKENS_FILE=str(reviewers))
    assert listed[1].split() == ["bob", "carol", "dave"]

    gone = await command("reviewers", "remove", "dave", cwd=tmp_path, REVIEW_TOKENS_FILE=str(reviewers))
    assert gone[0] == 0, gone[2]
    assert (await call(port, "GET", "/reviewer", token=token))[0] == 401
    assert (await call(port, "GET", "/reviewer", token=TOKENS["bob"]))[0] == 200
