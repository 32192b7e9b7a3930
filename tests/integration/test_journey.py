"""A payout's journey on the API and the CLI, against the real broker: approved automatically, held
(and escalated), rejected by a person; an order id two sellers share."""

from __future__ import annotations

from decimal import Decimal

import orjson

from tests.integration.test_review_cli import command
from tests.kafka import produce, read_until
from tests.processes import free_port
from tests.reviews import TOKENS, big_order, call, decide, stats, tokens_file, until, web_port
from worker.payouts.rules import payout_id_for

ORDER_TIME = "2026-11-28T10:00:00Z"


def order(order_id: str, seller: str, amount: str) -> bytes:
    return orjson.dumps(
        {
            "order_id": order_id,
            "seller_id": seller,
            "customer_id": f"c-{seller}",
            "amount": amount,
            "currency": "EUR",
            "created_at": ORDER_TIME,
        }
    )


async def journey_when(port: int, payout_id: str, token: str, ready) -> dict:
    """The payout's journey, once `ready(journey)` holds."""

    async def get() -> tuple[int, dict]:
        return await call(port, "GET", f"/payouts/{payout_id}", token=token)

    _, journey = await until(get, lambda answer: answer[0] == 200 and ready(answer[1]))
    return journey


async def test_the_journey_of_an_approved_a_held_and_a_rejected_payout(bootstrap, start_pipeline, tmp_path):
    pipeline = await start_pipeline(
        review_tokens_file=tokens_file(tmp_path), review_threshold=Decimal("500.00"), review_sla="3s"
    )
    port, topics, bob = web_port(pipeline), pipeline.topics, TOKENS["bob"]
    orders = topics.orders.get_topic_name()
    # One order id, two sellers: small for s-a (approved), big for s-b (held, then rejected).
    await produce(bootstrap, orders, [(b"s-a", order("o-j1", "s-a", "120.00"))])
    await produce(bootstrap, orders, [(b"s-b", order("o-j1", "s-b", "2000.00"))])
    await produce(bootstrap, orders, [(b"s-c", big_order("o-j2", seller="s-c"))])
    approved, rejected, held = (
        payout_id_for(s, o) for s, o in [("s-a", "o-j1"), ("s-b", "o-j1"), ("s-c", "o-j2")]
    )
    read = await read_until(bootstrap, orders, lambda v: len(v) == 3, decode=None, with_keys=True)
    assert len(read) == 3

    journey = await journey_when(port, approved, bob, lambda j: j["settlement"]["state"] == "settled")
    assert journey["status"] == "settled (approved)"
    assert (journey["order_id"], journey["seller_id"], journey["customer_id"]) == ("o-j1", "s-a", "c-s-a")
    assert journey["order"]["topic"] == orders and journey["order"]["created_at"] == ORDER_TIME
    assert isinstance(journey["order"]["partition"], int) and isinstance(journey["order"]["offset"], int)
    assert journey["fee"] == {
        "rate": "0.029",
        "fixed": "0.30",
        "gross": "120.00",
        "fee": "3.78",
        "net": "116.22",
    }
    assert (journey["screening"]["outcome"], journey["screening"]["threshold"]) == ("approved", "500.00")
    assert [step["step"] for step in journey["settlement"]["steps"]] == ["approved", "settled"]
    assert journey.get("review") is None

    # The held payout waits past the SLA: the journey shows it held, then escalated.
    waiting = await journey_when(port, held, bob, lambda j: (j.get("review") or {}).get("escalated_at"))
    assert waiting["status"] == "waiting for review (overdue, escalated)"
    assert waiting["screening"]["outcome"] == "review" and waiting["settlement"]["state"] == "not final"
    assert waiting["review"]["held_at"] <= waiting["review"]["escalated_at"]

    await journey_when(port, rejected, bob, lambda j: (j.get("review") or {}).get("held_at"))
    assert (await decide(port, rejected, "reject", reason="stolen card", token=bob))[0] == 200
    journey = await journey_when(port, rejected, bob, lambda j: j["settlement"]["state"] == "settled")
    assert journey["status"] == "settled (rejected)"
    assert journey["review"]["decision"] == "reject"
    assert (journey["review"]["decided_by"], journey["review"]["reason"]) == ("bob", "stolen card")
    assert journey["review"]["held_at"] <= journey["review"]["decided_at"]
    assert [step["step"] for step in journey["settlement"]["steps"]] == ["rejected", "settled"]

    status, both = await call(port, "GET", "/orders/o-j1", token=bob)
    assert status == 200 and sorted(p["payout_id"] for p in both["payouts"]) == sorted([approved, rejected])
    status, seller = await call(port, "GET", "/sellers/s-c", token=bob)
    assert status == 200 and [p["payout_id"] for p in seller["payouts"]] == [held]
    assert (await call(port, "GET", "/payouts/po-unknown", token=bob))[0] == 404
    assert (await call(port, "GET", "/orders/o-unknown", token=bob))[0] == 404
    assert (await call(port, "GET", f"/payouts/{approved}", token=None))[0] == 401
    assert (await call(port, "GET", "/orders/o-j1", token="wrong"))[0] == 401

    # The CLI prints the same, for a payout and for an order.
    env = {"WEB_PORT": str(port), "REVIEW_TOKEN": bob}
    code, out, err = await command("payouts", "show", approved, cwd=tmp_path, **env)
    assert code == 0, err
    assert out.splitlines()[0] == f"payout {approved}: settled (approved)"
    assert "120.00 EUR x 0.029 + 0.30 = 3.78; net 116.22" in out and f"{orders}[" in out
    code, out, err = await command("payouts", "show", "o-j1", cwd=tmp_path, **env)
    assert code == 0, err
    assert f"payout {approved}: settled (approved)" in out and f"payout {rejected}: settled (rejected)" in out
    assert "reject by bob" in out and "stolen card" in out
    code, out, err = await command("payouts", "show", "po-unknown", "--json", cwd=tmp_path, **env)
    assert code == 1 and "HTTP 404" in err


async def test_two_workers_answer_and_one_out_of_reach_is_named(bootstrap, start_pipeline, tmp_path):
    # Worker two advertises an address nothing answers on (as a wrong WEB_ADVERTISED_URL would):
    # worker one cannot ask it for its part, and says so instead of answering 404.
    settings = {"review_tokens_file": tokens_file(tmp_path), "topic_partitions": 4}
    ports, nowhere = [free_port(), free_port()], f"http://127.0.0.1:{free_port()}"
    one = await start_pipeline(**settings, web_port=ports[0])
    await start_pipeline(**settings, web_port=ports[1], web_advertised_url=nowhere)
    sellers = [f"s-w{n}" for n in range(8)]
    orders = one.topics.orders.get_topic_name()
    await produce(bootstrap, orders, [(s.encode(), order(f"o-{s}", s, "50.00")) for s in sellers])
    payout_ids = [payout_id_for(s, f"o-{s}") for s in sellers]

    async def settled() -> list[int]:
        return [(await stats(port))["ledger"]["settled"] for port in ports]

    owned = await until(settled, lambda counts: 0 not in counts and sum(counts) == len(sellers))
    print(f"settled per worker: {owned}")

    bob = TOKENS["bob"]
    from_two = [await call(ports[1], "GET", f"/payouts/{p}", token=bob) for p in payout_ids]
    assert [status for status, _ in from_two] == [200] * len(sellers)  # worker one answers it
    assert {j["status"] for _, j in from_two} == {"settled (approved)"}
    assert all(j["unreachable_workers"] == [] for _, j in from_two)

    from_one = [await call(ports[0], "GET", f"/payouts/{p}", token=bob) for p in payout_ids]
    own, others = [j for s, j in from_one if s == 200], [j for s, j in from_one if s == 503]
    assert (len(own), len(others)) == (owned[0], owned[1]), from_one
    assert all(j["unreachable_workers"] == [nowhere] for j in own)
    assert all(nowhere in j["error"] and "try again" in j["error"] for j in others)
