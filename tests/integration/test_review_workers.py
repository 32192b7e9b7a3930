"""Two workers sharing the partitions: either one answers a review request for any payout, and a
decision forwarded to the owner is still signed by the reviewer whose token it carries."""

from __future__ import annotations

from decimal import Decimal

from tests.kafka import read_until
from tests.processes import free_port
from tests.reviews import TOKENS, call, decide, hold, stats, tokens_file, until

ORDERS = [f"o-{n}" for n in range(8)]


async def test_two_workers_both_answer_for_every_payout(bootstrap, start_pipeline, tmp_path):
    # As in containers: both bind every address and advertise their own (two loopback addresses
    # here). Before, a worker bound to 0.0.0.0 advertised 127.0.0.1, which is itself in a container.
    settings = {
        "review_tokens_file": tokens_file(tmp_path),  # every worker reads the same reviewers
        "review_threshold": Decimal("500.00"),
        "topic_partitions": 4,
    }
    bob = TOKENS["bob"]
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.{2 + n}:{port}" for n, port in enumerate(ports)]
    one, two = [
        await start_pipeline(**settings, web_port=port, web_bind="0.0.0.0", web_advertised_url=url)
        for port, url in zip(ports, urls, strict=True)
    ]
    payout_ids = await hold(bootstrap, one, ORDERS, token=bob)
    # Wait for the rebalance to settle: each worker owns some of the payouts, none is counted twice.
    owned = await until(
        lambda: _pending_per_worker(ports), lambda counts: 0 not in counts and sum(counts) == len(ORDERS)
    )
    print(f"pending per worker: {owned}")
    for pipeline in (one, two):  # each routes to the addresses the group's members advertise
        members = pipeline.app.router.table_metadata("pending-reviews")
        assert sorted(members) == urls, members

    for port in ports:
        status, page = await call(port, "GET", "/reviews?limit=500", token=bob)
        assert status == 200 and page["total"] == len(ORDERS) and page["unreachable_workers"] == []
        assert sorted(r["payout"]["payout_id"] for r in page["reviews"]) == sorted(payout_ids)
        for payout_id in payout_ids:
            status, one_review = await call(port, "GET", f"/reviews/{payout_id}", token=bob)
            assert (status, one_review["status"]) == (200, "pending"), (port, payout_id)

    # Every decision through the same worker: half of them are forwarded to the other one.
    answers = [await decide(ports[0], payout_id, "approve", token=bob) for payout_id in payout_ids]

    assert [status for status, _ in answers] == [200] * len(ORDERS), answers
    approved = await read_until(
        bootstrap, one.topics.payouts_approved.get_topic_name(), lambda v: len(v) >= len(ORDERS)
    )
    assert sorted(p["payout_id"] for p in approved) == sorted(payout_ids)
    assert {p["review"]["reviewer"] for p in approved} == {"bob"}  # forwarded ones too
    assert (await decide(ports[1], payout_ids[0], "reject", token=TOKENS["carol"]))[0] == 409
    decided = [(await stats(port))["reviews"]["decisions"].get("approved", 0) for port in ports]
    assert sum(decided) == len(ORDERS) and 0 not in decided  # each worker applied its own


async def _pending_per_worker(ports: list[int]) -> list[int]:
    return [(await stats(port))["reviews"]["pending"] for port in ports]
