"""A payout id stands for one payout: reused order ids and second decisions are never dropped silently."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from decimal import Decimal

import orjson

from tests.kafka import produce, read_until
from tests.reviews import SHARED, big_order, decide, pending_ids, stats, until, web_port
from worker.payouts.rules import payout_id_for

REVIEW = {**SHARED, "review_threshold": Decimal("500.00")}


def conflicts(letters: list[dict]) -> list[dict]:
    return [letter for letter in letters if letter["reason"] == "conflicting_duplicate"]


async def test_a_reused_order_id_is_held_per_seller_and_a_changed_repeat_is_a_dead_letter(
    bootstrap, start_pipeline
):
    pipeline = await start_pipeline(**REVIEW)
    port, topics, app_id = web_port(pipeline), pipeline.topics, pipeline.app.conf.id
    orders, dead = topics.orders.get_topic_name(), topics.dead_letters.get_topic_name()
    # One customer order with items of two sellers, each above the threshold: two payouts wait.
    await produce(
        bootstrap, orders, [(b"s-a", big_order("o-shared", "s-a")), (b"s-b", big_order("o-shared", "s-b"))]
    )
    a, b = payout_id_for("s-a", "o-shared"), payout_id_for("s-b", "o-shared")
    await until(lambda: pending_ids(port), lambda ids: {a, b} <= set(ids))

    # Seller a sends that order again as it was (a duplicate), then with another amount (a conflict).
    again = [(b"s-a", big_order("o-shared", "s-a")), (b"s-a", big_order("o-shared", "s-a", amount="3000.00"))]
    await produce(bootstrap, orders, again)

    [letter] = conflicts(await read_until(bootstrap, dead, conflicts))
    assert letter["source_topic"] == f"{app_id}-held-reviews"
    assert orjson.loads(base64.b64decode(letter["payload_base64"]))["payout"]["gross"] == "3000.00"
    counts = await until(lambda: stats(port), lambda s: s["reviews"]["holds"].get("duplicate") == 1)
    assert counts["reviews"]["holds"] == {"new": 2, "duplicate": 1, "conflict": 1}
    assert sorted(await pending_ids(port)) == sorted([a, b])


async def test_a_different_decision_for_a_decided_payout_is_a_dead_letter_and_the_same_one_a_repeat(
    bootstrap, start_pipeline
):
    pipeline = await start_pipeline(**REVIEW)
    port, topics = web_port(pipeline), pipeline.topics
    await produce(bootstrap, topics.orders.get_topic_name(), [(b"s-1", big_order("o-1"))])
    payout_id = payout_id_for("s-1", "o-1")
    await until(lambda: pending_ids(port), lambda ids: payout_id in ids)
    status, answer = await decide(port, payout_id, "approve", reason="called the seller")
    assert status == 200, answer

    # Another service writes straight to review-decisions: a different verdict, then the same
    # decision re-stamped (a retry).
    decided_at = datetime.fromisoformat(answer["decision"]["decided_at"])
    other = {**answer["decision"], "decision": "reject", "reviewer": "mallory"}
    retry = {**answer["decision"], "decided_at": (decided_at + timedelta(seconds=3)).isoformat()}
    decisions = topics.review_decisions.get_topic_name()
    await produce(bootstrap, decisions, [(payout_id.encode(), orjson.dumps(d)) for d in (other, retry)])

    [letter] = conflicts(await read_until(bootstrap, topics.dead_letters.get_topic_name(), conflicts))
    assert letter["source_topic"] == decisions
    assert orjson.loads(base64.b64decode(letter["payload_base64"]))["reviewer"] == "mallory"
    counts = await until(lambda: stats(port), lambda s: s["reviews"]["decisions"].get("redelivered") == 1)
    assert counts["reviews"]["decisions"] == {"approved": 1, "conflict": 1, "redelivered": 1}
    # The retry sends the approved payout again (same id, settled once); the conflict sends nothing.
    approved = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) == 2)
    assert {(p["payout_id"], p["review"]["decision"]) for p in approved} == {(payout_id, "approve")}
    assert (await stats(port))["topics"][topics.payouts_rejected.get_topic_name()]["produced"] == 0
