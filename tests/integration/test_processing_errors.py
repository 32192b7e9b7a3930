"""An exception escaping a stage (a bug, not bad input): PROCESSING_ERRORS decides, the worker never crashes.

The bug is planted in a rule that a stage calls (`screen` in the batch stage `screening`, `settle` in
the Faust-agent stage `settlement`): it raises for one order, as a real bug would for some input.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.test_observability import poll, poll_metric
from tests.integration.test_pipeline import order
from tests.kafka import produce, read_to_end, read_until
from tests.processes import ROOT
from tests.reviews import TOKEN, call, stats, until
from worker.payouts.records import Payout
from worker.payouts.rules import Route, payout_id_for, screen
from worker.review.stages import seller_history
from worker.runtime.outbox import Outbox
from worker.runtime.stage import Stage
from worker.runtime.stores import key_partition
from worker.settlement.ledger import Settle, Settlement, settle

BUG = "o-bug"


def buggy_screen(payout: Payout, threshold: Decimal) -> Route:
    """`screen`, with a bug that bites on the payout of order BUG."""
    if payout.order_id == BUG:
        raise KeyError("a bug in the rule")
    return screen(payout, threshold)


def buggy_settle(existing: Settlement | None, payout: Payout, state: str) -> Settle:
    """`settle`, with the same bug."""
    if payout.order_id == BUG:
        raise KeyError("a bug in the rule")
    return settle(existing, payout, state)


def buggy_seller_history(*args: Any) -> Stage[Payout]:
    """The `seller-history` stage, whose handler has the same bug."""
    stage = seller_history(*args)

    def handle(payout: Payout, out: Outbox) -> None:
        if payout.order_id == BUG:
            raise KeyError("a bug in the rule")
        stage.handle(payout, out)

    return dataclasses.replace(stage, handle=handle)


def sellers_on_two_partitions(partitions: int) -> tuple[str, str]:
    """A seller whose events land on partition 0, and one whose events land elsewhere."""
    sellers = [f"s-{n}" for n in range(100)]
    first = next(s for s in sellers if key_partition(s.encode(), partitions) == 0)
    other = next(s for s in sellers if key_partition(s.encode(), partitions) != 0)
    return first, other


STAGES: dict[str, tuple[str, Callable[..., Any], str]] = {
    # stage: (the rule it calls, that rule with the bug, the topic it consumes)
    "screening": ("worker.payouts.stages.screen", buggy_screen, "payouts"),
    "settlement": ("worker.settlement.stage.settle", buggy_settle, "payouts-approved"),
}


@pytest.mark.parametrize("stage", list(STAGES))
async def test_by_default_the_message_is_dead_lettered_and_the_stage_goes_on(
    bootstrap, start_pipeline, monkeypatch, stage: str
) -> None:
    rule, bug, source = STAGES[stage]
    monkeypatch.setattr(rule, bug)
    pipeline = await start_pipeline()
    topics, port = pipeline.topics, pipeline.app.conf.web_port
    prefix = pipeline.app.conf.id

    await produce(
        bootstrap,
        topics.orders.get_topic_name(),
        [(b"s-1", order(o, "10.00")) for o in ("o-before", BUG, "o-after")],
    )

    [letter] = await read_until(bootstrap, topics.dead_letters.get_topic_name(), bool)
    assert (letter["reason"], letter["source_topic"]) == ("processing_error", f"{prefix}-{source}")
    assert letter["detail"] == f"stage {stage}: KeyError: 'a bug in the rule'"
    assert BUG.encode() in _payload(letter)  # the exact message, to replay after a fix
    done = await until(lambda: stats(port), lambda s: s["ledger"]["settled"] == 2)
    assert done["processing_errors"] == {stage: 1}
    key = ("streamline_processing_errors_total", (("stage", stage),))
    assert await poll_metric(port, key, 1.0) == 1.0
    assert not pipeline.app._crash_reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("stage", list(STAGES))
async def test_stop_pauses_only_that_partition_until_an_operator_skips_the_message(
    bootstrap, start_pipeline, monkeypatch, tmp_path, stage: str
) -> None:
    rule, bug, source = STAGES[stage]
    monkeypatch.setattr(rule, bug)
    pipeline = await start_pipeline(processing_errors="stop", review_api_token=TOKEN, topic_partitions=2)
    topics, port, prefix = pipeline.topics, pipeline.app.conf.web_port, pipeline.app.conf.id
    stuck, free = sellers_on_two_partitions(2)
    orders = topics.orders.get_topic_name()

    await produce(bootstrap, orders, [(stuck.encode(), order(BUG, "10.00", seller=stuck))])
    readiness = await poll(port, "/readyz", lambda status, body: status == 503 and body["stopped_at_errors"])
    [halt] = readiness["stopped_at_errors"]
    assert (halt["stage"], halt["topic"], halt["partition"]) == (stage, f"{prefix}-{source}", 0)
    assert halt["error"] == "KeyError: 'a bug in the rule'"
    await produce(
        bootstrap,
        orders,
        [
            (stuck.encode(), order("o-after", "10.00", seller=stuck)),  # behind the stopped one
            (free.encode(), order("o-other", "10.00", seller=free)),  # another partition: flows
        ],
    )
    await until(lambda: stats(port), lambda s: s["ledger"]["settled"] == 1)
    assert _settled_orders(await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool)) <= {
        "o-other",
        *(["o-after", BUG] if stage == "settlement" else []),  # screening went on; settlement stopped
    }
    assert not pipeline.app._crash_reason  # type: ignore[attr-defined]

    skipped = await asyncio.to_thread(
        _skip, bootstrap, port, f"{prefix}-{source}", 0, halt["offset"], "a known bug, see #12"
    )

    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    [letter] = await read_until(bootstrap, topics.dead_letters.get_topic_name(), bool)
    assert (letter["reason"], letter["source_offset"]) == ("processing_error", halt["offset"])
    assert letter["detail"].endswith("skipped by reviewer: a known bug, see #12")
    await until(lambda: stats(port), lambda s: s["ledger"]["settled"] == 2)  # o-after, past the skip
    await poll(port, "/readyz", lambda status, body: status == 200 and not body["stopped_at_errors"])
    assert (await call(port, "POST", f"/partitions/{prefix}-{source}/0/skip", body={"offset": 0})) == (
        400,
        {"error": "a reason is required"},
    )
    status, answer = await call(
        port, "POST", f"/partitions/{prefix}-{source}/0/skip", body={"offset": 0, "reason": "again"}
    )
    assert status == 404 and "not stopped" in answer["error"]


async def test_a_stopped_message_is_not_committed_and_a_fixed_worker_processes_it(
    bootstrap, start_pipeline, monkeypatch
) -> None:
    monkeypatch.setattr("worker.payouts.stages.screen", buggy_screen)
    settings: dict[str, Any] = {"processing_errors": "stop", "topic_partitions": 1}
    broken = await start_pipeline(**settings)
    topics, port = broken.topics, broken.app.conf.web_port
    messages = [(b"s-1", order(o, "10.00")) for o in (BUG, "o-after")]
    await produce(bootstrap, topics.orders.get_topic_name(), messages)
    await poll(port, "/readyz", lambda status, body: status == 503 and body["stopped_at_errors"])
    await broken.app.stop()

    monkeypatch.undo()  # the fix is deployed
    fixed = await start_pipeline(**settings)

    approved = await read_until(
        bootstrap, fixed.topics.payouts_approved.get_topic_name(), lambda v: len(_settled_orders(v)) == 2
    )
    assert _settled_orders(approved) == {BUG, "o-after"}


@pytest.mark.parametrize("failing", [("settlement",), ("settlement", "seller-history")], ids=["one", "both"])
async def test_a_skip_gets_every_stage_of_the_topic_past_the_message_and_each_processes_the_rest(
    bootstrap, start_pipeline, monkeypatch, failing: tuple[str, ...]
) -> None:
    # settlement and seller-history both consume payouts-approved: a stop in one (or both) at a
    # message, then its skip, must leave each stage with every other message of the partition.
    monkeypatch.setattr(STAGES["settlement"][0], buggy_settle)
    if "seller-history" in failing:
        monkeypatch.setattr("worker.review.seller_history", buggy_seller_history)
    settings: dict[str, Any] = {"processing_errors": "stop", "review_api_token": TOKEN, "topic_partitions": 2}
    pipeline = await start_pipeline(**settings)
    topics, port, prefix = pipeline.topics, pipeline.app.conf.web_port, pipeline.app.conf.id
    stuck, _ = sellers_on_two_partitions(2)
    source = f"{prefix}-payouts-approved"
    before, after = [f"o-before-{n}" for n in range(3)], [f"o-after-{n}" for n in range(3)]
    orders = topics.orders.get_topic_name()

    await produce(
        bootstrap, orders, [(stuck.encode(), order(o, "10.00", seller=stuck)) for o in [*before, BUG]]
    )
    readiness = await poll(
        port, "/readyz", lambda _, body: len(body["stopped_at_errors"]) == len(failing), timeout=45
    )
    halts = readiness["stopped_at_errors"]
    assert sorted(h["stage"] for h in halts) == sorted(failing)
    assert {(h["topic"], h["partition"]) for h in halts} == {(source, 0)}
    [offset] = {h["offset"] for h in halts}
    await produce(bootstrap, orders, [(stuck.encode(), order(o, "10.00", seller=stuck)) for o in after])

    skipped = await asyncio.to_thread(_skip, bootstrap, port, source, 0, offset, "a known bug, see #12")

    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    await poll(port, "/readyz", lambda status, body: status == 200 and not body["stopped_at_errors"])
    await _settled_and_remembered(
        bootstrap, prefix, stuck, [*before, *after], [*before, BUG, *after], failing
    )
    [letter] = await read_until(bootstrap, topics.dead_letters.get_topic_name(), bool)
    assert (letter["source_topic"], letter["source_offset"]) == (source, offset)
    assert all(f"stage {stage}" in letter["detail"] for stage in failing), letter["detail"]
    goes_on = f"@{offset}: dead-lettered, the partition goes on (stages: {', '.join(sorted(failing))})"
    assert goes_on in skipped.stdout

    await pipeline.app.stop()  # a restart, the bug still there: what was skipped is not met again
    restarted = await start_pipeline(**settings)
    await produce(bootstrap, orders, [(stuck.encode(), order("o-last", "10.00", seller=stuck))])

    everything = [*before, *after, "o-last"]
    await _settled_and_remembered(
        bootstrap, prefix, stuck, everything, [*before, BUG, *after, "o-last"], failing
    )
    _status, readiness = await call(restarted.app.conf.web_port, "GET", "/readyz", token=None)
    assert not readiness["stopped_at_errors"], readiness
    letters = await read_to_end(bootstrap, topics.dead_letters.get_topic_name())
    assert [(letter["source_offset"]) for letter in letters] == [offset]


async def _settled_and_remembered(
    bootstrap: str,
    prefix: str,
    seller: str,
    settled: list[str],
    remembered: list[str],
    failing: tuple[str, ...],
) -> None:
    """Wait until the ledger holds `settled` and the seller's history `remembered` (the orders of
    `seller`); then check that the ledger settled each once, and nothing else."""
    ids = {payout_id_for(seller, o): o for o in {*settled, *remembered}}
    want_settled = {payout_id_for(seller, o) for o in settled}
    want_remembered = {
        payout_id_for(seller, o) for o in remembered if "seller-history" not in failing or o != BUG
    }

    def history(values: list[tuple[bytes, Any]]) -> set[str]:
        last = [value for key, value in values if key == seller.encode()]
        return {entry["payout_id"] for entry in last[-1]["payouts"]} if last else set()

    with contextlib.suppress(AssertionError):  # the assertion below names what is missing
        await read_until(
            bootstrap,
            f"{prefix}-seller-history-changelog",
            lambda v: history(v) >= want_remembered,
            with_keys=True,
            timeout=30,
        )
    remembered_now = history(
        await read_to_end(bootstrap, f"{prefix}-seller-history-changelog", with_keys=True)
    )
    with contextlib.suppress(AssertionError):
        await read_until(
            bootstrap,
            f"{prefix}-settlement-ledger-changelog",
            lambda v: {e["payout_id"] for e in v} >= want_settled,
            timeout=30,
        )
    ledger = [e["payout_id"] for e in await read_to_end(bootstrap, f"{prefix}-settlement-ledger-changelog")]
    missing_history = sorted(ids[p] for p in want_remembered - remembered_now)
    missing_ledger = sorted(ids.get(p, p) for p in want_settled - set(ledger))
    unexpected = sorted(ids.get(p, p) for p in set(ledger) - want_settled)
    twice = sorted(ids.get(p, p) for p in set(ledger) if ledger.count(p) > 1)
    assert (missing_history, missing_ledger, unexpected, twice) == ([], [], [], []), (remembered_now, ledger)


def _skip(bootstrap: str, port: int, topic: str, partition: int, offset: int, reason: str) -> Any:
    """`python -m worker skip ...` as an operator runs it, against the test's worker."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REVIEW_API_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "worker", "skip", topic, str(partition), str(offset), "--reason", reason]
    url = ["--url", f"http://127.0.0.1:{port}"]
    return subprocess.run(
        command + url, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60
    )


def _payload(letter: dict[str, Any]) -> bytes:
    return base64.b64decode(letter["payload_base64"])


def _settled_orders(payouts: list[dict[str, Any]]) -> set[str]:
    return {payout["order_id"] for payout in payouts}
