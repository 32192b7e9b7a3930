"""The review API against the embedded broker: held payouts approved or rejected by a person."""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal

import aiohttp

from tests.kafka import produce, read_until
from tests.reviews import (
    SHARED,
    TOKEN,
    TOKENS,
    big_order,
    call,
    decide,
    hold,
    stats,
    tokens_file,
    until,
    web_port,
)
from worker.payouts.rules import payout_id_for

REVIEW = {**SHARED, "review_threshold": Decimal("500.00")}


def by_id(payout_id: str):
    return lambda values: [v for v in values if v["payout_id"] == payout_id]


async def test_a_held_payout_approved_through_the_api_flows_on_with_the_decision(bootstrap, start_pipeline):
    pipeline = await start_pipeline(**REVIEW)
    topics, port = pipeline.topics, web_port(pipeline)
    [payout_id] = await hold(bootstrap, pipeline, ["o-approve"])

    status, answer = await decide(port, payout_id, "approve", reason="called the seller")

    assert status == 200, answer
    assert (answer["status"], answer["decision"]["reviewer"]) == ("approved", "alice")
    [approved] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), by_id(payout_id))
    assert approved["net"] == "1941.70" and approved["seller_id"] == "s-0"
    assert approved["review"]["decision"] == "approve"
    assert approved["review"]["reason"] == "called the seller"
    assert approved["review"]["decided_at"] == answer["decision"]["decided_at"]
    assert await call(port, "GET", f"/reviews/{payout_id}") == (
        200,
        {"status": "approved", **answer_of(answer)},
    )
    status, conflict = await decide(port, payout_id, "reject")
    assert status == 409 and "decided already" in conflict["error"]
    assert (await call(port, "GET", "/reviews"))[1]["total"] == 0

    # Redelivery: the very same decision message again. The same payout is sent again (the first
    # delivery might not have reached the broker), and it settles once.
    decisions = topics.review_decisions.get_topic_name()
    [original] = await read_until(bootstrap, decisions, bool, decode=lambda raw: raw)
    await produce(bootstrap, decisions, [(payout_id.encode(), original)])
    counts = await until(lambda: stats(port), lambda s: s["ledger"]["duplicates_collapsed"] == 1)
    assert counts["reviews"]["decisions"] == {"approved": 1, "redelivered": 1}
    assert counts["ledger"]["settled"] == 1
    twice = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) == 2)
    assert twice[0] == twice[1] == approved


def answer_of(answer: dict) -> dict:
    return {"decision": answer["decision"]}


async def test_a_rejected_payout_goes_to_payouts_rejected_and_bad_requests_are_refused(
    bootstrap, start_pipeline
):
    pipeline = await start_pipeline(**REVIEW)
    topics, port = pipeline.topics, web_port(pipeline)
    first, second = await hold(bootstrap, pipeline, ["o-reject", "o-wait"])
    path = f"/reviews/{first}/reject"

    assert (await call(port, "POST", path, token=None, body={"reviewer": "a", "reason": "b"}))[0] == 401
    assert (await call(port, "POST", path, token="wrong", body={"reviewer": "a", "reason": "b"}))[0] == 401
    assert (await call(port, "GET", "/reviews", token=None))[0] == 401
    assert (await call(port, "GET", f"/reviews/{first}", token="wrong"))[0] == 401
    status, bad = await call(port, "POST", path, raw=b"{not json")
    assert status == 400 and "invalid_json" in bad["error"]
    status, bad = await call(port, "POST", path, body={"reviewer": "alice"})
    assert status == 400 and "reason is missing" in bad["error"]
    # Once 500s for an authenticated caller: a body nested 254 deep, an offset orjson cannot write.
    deep = b'{"reviewer": "alice", "reason": "ok", "x": ' + b"[" * 254 + b"]" * 254 + b"}"
    status, bad = await call(port, "POST", path, raw=deep)
    assert status == 400 and "unknown_field" in bad["error"]
    for offset in (2**63, 2**64, "1_0"):
        status, bad = await call(port, "GET", f"/reviews?offset={offset}")
        assert status == 400 and "offset" in bad["error"], offset
    assert (await decide(port, "po-no-such-payout", "approve"))[0] == 404
    assert (await call(port, "GET", "/reviews/po-no-such-payout"))[0] == 404

    status, page = await call(port, "GET", "/reviews?limit=1&offset=1")
    assert status == 200 and page["total"] == 2 and len(page["reviews"]) == 1
    status, one = await call(port, "GET", f"/reviews/{second}")
    assert status == 200 and one["status"] == "pending" and one["review"]["payout"]["payout_id"] == second

    status, answer = await decide(port, first, "reject", reason="stolen card")

    assert status == 200 and answer["status"] == "rejected"
    [rejected] = await read_until(bootstrap, topics.payouts_rejected.get_topic_name(), by_id(first))
    assert (rejected["review"]["decision"], rejected["review"]["reason"]) == ("reject", "stolen card")
    remaining = await stats(port)
    assert remaining["reviews"]["pending"] == 1
    assert remaining["reviews"]["decisions"] == {"rejected": 1}
    assert remaining["reviews"]["oldest_pending_age_s"] >= 0


async def test_without_a_token_the_api_is_closed_but_the_page_is_served(start_pipeline):
    pipeline = await start_pipeline(review_threshold=Decimal("500.00"))
    port = web_port(pipeline)

    for method, path in [("GET", "/reviews"), ("GET", "/reviews/po-1"), ("POST", "/reviews/po-1/approve")]:
        status, answer = await call(port, method, path, body={"reviewer": "a", "reason": "b"})
        assert status == 503, (method, path)
        assert "REVIEW_API_TOKEN" in answer["error"] and "REVIEW_TOKENS_FILE" in answer["error"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/") as page:
            assert page.status == 200 and page.content_type == "text/html"
            assert "payout review" in await page.text()
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for asset in ("dashboard.js", "dashboard.css"):
            async with http.get(f"http://127.0.0.1:{port}/static/{asset}") as response:
                assert response.status == 200, asset


async def test_a_held_payout_comes_with_its_sellers_recent_approved_payouts(bootstrap, start_pipeline):
    pipeline = await start_pipeline(**REVIEW)
    orders, port = pipeline.topics.orders.get_topic_name(), web_port(pipeline)
    await produce(bootstrap, orders, [(b"s-h", big_order("o-small", seller="s-h", amount="80.00"))])
    await read_until(bootstrap, pipeline.topics.payouts_approved.get_topic_name(), bool)
    attempts = iter(range(100))

    async def held_history() -> list:
        # The history is written in batches (about a second): hold big payouts until one shows it.
        order_id = f"o-big-{next(attempts)}"
        await produce(bootstrap, orders, [(b"s-h", big_order(order_id, seller="s-h"))])
        payout_id = payout_id_for("s-h", order_id)
        await until(lambda: call(port, "GET", f"/reviews/{payout_id}"), lambda answer: answer[0] == 200)
        return (await call(port, "GET", f"/reviews/{payout_id}"))[1]["review"]["history"]

    [entry] = await until(held_history, bool, every=0)
    assert (entry["net"], entry["currency"]) == ("77.38", "EUR")


async def test_each_reviewer_signs_with_their_own_token_and_a_body_cannot_sign_for_another(
    bootstrap, start_pipeline, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    reviewers = tokens_file(tmp_path)
    pipeline = await start_pipeline(**REVIEW, review_tokens_file=reviewers)  # and the shared token: alice
    port, topics = web_port(pipeline), pipeline.topics
    bob = TOKENS["bob"]
    first, second, third = await hold(bootstrap, pipeline, ["o-bob", "o-alice", "o-forged"], token=bob)
    answers = []

    assert await call(port, "GET", "/reviewer", token=bob) == (200, {"reviewer": "bob"})
    assert await call(port, "GET", "/reviewer") == (200, {"reviewer": "alice"})  # REVIEW_API_TOKEN
    assert (await call(port, "GET", "/reviewer", token=TOKEN + "x"))[0] == 401
    path = f"/reviews/{third}/approve"
    answers.append(
        await call(port, "POST", path, token=bob, body={"reviewer": "alice (the CFO)", "reason": "x"})
    )
    assert answers[-1][0] == 400 and "reviewer_mismatch" in answers[-1][1]["error"]
    answers.append(
        await call(
            port, "POST", f"/reviews/{first}/approve", token=bob, body={"reviewer": "bob", "reason": "ok"}
        )
    )
    answers.append(await decide(port, second, "reject", reason="stolen card"))
    assert [(status, a.get("decision", {}).get("reviewer")) for status, a in answers[1:]] == [
        (200, "bob"),
        (200, "alice"),
    ]
    [approved] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), by_id(first))
    assert approved["review"]["reviewer"] == "bob"

    # The file is re-read when it changes: a removed reviewer's token stops working at once, and a
    # file that cannot be used closes the API rather than keep old tokens.
    reviewers.write_text(reviewers.read_text().replace("bob:", "# bob:"))
    answers.append(await call(port, "GET", "/reviews", token=bob))
    assert answers[-1][0] == 401
    reviewers.write_text("bob:not-a-hash\n")
    answers.append(await call(port, "GET", "/reviews"))
    assert answers[-1][0] == 503 and "REVIEW_TOKENS_FILE cannot be used (line 1 " in answers[-1][1]["error"]

    secrets = [TOKEN, *TOKENS.values()] + [
        hashlib.sha256(t.encode()).hexdigest() for t in (TOKEN, *TOKENS.values())
    ]
    shown = repr(answers) + "\n".join(record.getMessage() for record in caplog.records)
    assert "review decision posted" in shown and not [s for s in secrets if s in shown]
