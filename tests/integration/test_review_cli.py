"""`python -m worker reviews ...` as an operator runs it, against a running worker."""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

from tests.kafka import read_until
from tests.reviews import TOKEN, hold, web_port

ROOT = Path(__file__).parents[2]


async def reviews(*args: str, port: int, cwd: Path, token: str = TOKEN) -> tuple[int, str, str]:
    """Run the command in its own process (without blocking the worker on this loop)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REVIEW_", "WEB_"))}
    env.update({"PYTHONPATH": str(ROOT), "WEB_PORT": str(port), "REVIEW_API_TOKEN": token})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker", "reviews", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_an_operator_lists_approves_and_rejects_from_the_command_line(
    bootstrap, start_pipeline, tmp_path
):
    pipeline = await start_pipeline(review_api_token=TOKEN, review_threshold=Decimal("500.00"))
    port, topics = web_port(pipeline), pipeline.topics
    first, second = await hold(bootstrap, pipeline, ["o-cli-1", "o-cli-2"])

    code, out, _ = await reviews("list", port=port, cwd=tmp_path)
    assert code == 0
    assert out.splitlines()[0] == "2 payout(s) waiting for review"
    assert first in out and second in out and "1941.70 EUR" in out

    approve, reject = await asyncio.gather(  # two operators at once
        reviews("approve", first, "--reason", "known seller", port=port, cwd=tmp_path),
        reviews("reject", second, "--reason", "stolen card", "--reviewer", "bob", port=port, cwd=tmp_path),
    )
    assert (approve[0], approve[1].strip()) == (0, f"{first}: approved")
    assert (reject[0], reject[1].strip()) == (0, f"{second}: rejected")

    [approved] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool)
    [rejected] = await read_until(bootstrap, topics.payouts_rejected.get_topic_name(), bool)
    assert (approved["payout_id"], approved["review"]["reason"]) == (first, "known seller")
    assert (rejected["payout_id"], rejected["review"]["reviewer"]) == (second, "bob")

    conflict, usage = await asyncio.gather(
        reviews("reject", first, "--reason", "changed my mind", port=port, cwd=tmp_path),
        reviews("approve", second, port=port, cwd=tmp_path),
    )
    assert conflict[0] == 1
    assert conflict[2].strip().splitlines() == [f"reviews: HTTP 409: payout {first} has been decided already"]
    assert usage[0] == 2 and "--reason" in usage[2] and "Traceback" not in usage[2]
