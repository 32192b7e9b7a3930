"""Everything a real producer can send to `orders`: each bad message lands in `dead-letters` with its
origin and reason, the worker keeps going, and `replay` sends them back after a fix (and only to an
input topic). Poison orders and decisions leave two workers running; message data cannot forge or
colour a log line."""

from __future__ import annotations

import asyncio
import base64
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from tests.integration.test_pipeline import order
from tests.integration.test_worker_output import stop, worker_env
from tests.kafka import produce, read_until
from tests.processes import free_port, poll_json, spawn
from tests.reviews import SHARED, hold
from worker.runtime.batches import BatchAgent
from worker.settings import Settings

SEED = orjson.loads(order("o-x", "10.00"))

CATALOGUE: list[tuple[str, bytes | None, bytes | None]] = [
    ("empty_value", b"k", b""),
    ("null_value", b"k", None),
    ("invalid_utf8", b"k", b'{"order_id": "\xff\xfe"}'),
    ("invalid_json", b"k", b"<order id=1/>"),
    ("invalid_json", b"k", order("o-trunc", "10.00")[:40]),
    ("invalid_json", b"k", b'{"order_id": "o-nan", "amount": NaN}'),
    ("not_an_object", b"k", b'["o-1", "10.00"]'),
    ("missing_field", b"k", orjson.dumps({k: v for k, v in SEED.items() if k != "amount"})),
    ("wrong_type", b"k", orjson.dumps({**SEED, "amount": 10.5})),
    ("wrong_type", b"k", orjson.dumps({**SEED, "seller_id": ["s-1"]})),
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": "NaN"})),
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": "-Infinity"})),
    # Decimal() reads these; other services read them differently (parseFloat("1_000.00") is 1).
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": "1_000.00"})),
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": "+12.50"})),
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": " 12.50 "})),
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": "1.25e1"})),
    ("invalid_amount", b"k", orjson.dumps({**SEED, "amount": "\u0661\u0662.50"})),
    ("non_positive_amount", b"k", orjson.dumps({**SEED, "amount": "-10.00"})),
    ("non_positive_amount", b"k", orjson.dumps({**SEED, "amount": "0.00"})),
    ("amount_too_large", b"k", orjson.dumps({**SEED, "amount": "99999999999999999999.00"})),
    ("too_many_decimals", b"k", orjson.dumps({**SEED, "amount": "10.001"})),
    ("unknown_currency", b"k", orjson.dumps({**SEED, "order_id": "o-jpy", "currency": "JPY"})),
    ("invalid_timestamp", b"k", orjson.dumps({**SEED, "created_at": "28/11/2026"})),
    # Valid ISO-8601 that UTC cannot hold: each of these stopped every worker (OverflowError).
    ("invalid_timestamp", b"k", orjson.dumps({**SEED, "created_at": "0001-01-01T00:00:00+01:00"})),
    ("invalid_timestamp", b"k", orjson.dumps({**SEED, "created_at": "9999-12-31T23:59:59-01:00"})),
    ("future_timestamp", b"k", orjson.dumps({**SEED, "created_at": "2999-01-01T00:00:00Z"})),
    ("fee_exceeds_amount", b"k", orjson.dumps({**SEED, "amount": "0.25"})),
    ("oversized", b"k", orjson.dumps({**SEED, "note": "x" * 100_000})),
    ("oversized", b"k", orjson.dumps({**SEED, "note": "y" * 900_000})),
]
FORGED = orjson.dumps(
    {
        **orjson.loads(order("o-forged", "99999.00")),
        "payout_id": "po-forged",
        "gross": "99999.00",
        "fee": "0.00",
        "net": "99999.00",
    }
)
GOOD = [
    (None, orjson.dumps({**SEED, "order_id": "o-nullkey"})),  # a null key is fine: we key by seller
    (b"s-1", orjson.dumps({**SEED, "order_id": "o-extra", "schema_version": 3, "tags": ["gift"]})),
]


def replay_cli(bootstrap: str, settings: Settings, *args: str) -> list[str]:
    """Run `python -m worker replay ...` as an operator would; its output lines (it must exit 0)."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "APP_ID": settings.app_id,
        "TOPIC_PREFIX": settings.topic_prefix,
        "WEB_PORT": "1",
    }
    cli = spawn([sys.executable, "-m", "worker", "replay", *args], env, settings.datadir.parent)
    output, _ = cli.communicate(timeout=60)
    assert cli.returncode == 0 and b"Traceback" not in output, output
    return output.decode().splitlines()


async def test_every_kind_of_bad_input_is_dead_lettered_and_replayable(
    bootstrap, start_pipeline, pipeline_settings
):
    pipeline = await start_pipeline()
    topics = pipeline.topics
    orders = topics.orders.get_topic_name()

    await produce(
        bootstrap, orders, [(k, v) for _, k, v in CATALOGUE] + GOOD, max_request_size=4 * 1024 * 1024
    )

    letters = await read_until(
        bootstrap, topics.dead_letters.get_topic_name(), lambda v: len(v) >= len(CATALOGUE)
    )
    assert sorted(d["reason"] for d in letters) == sorted(reason for reason, _, _ in CATALOGUE)
    assert len({(d["source_partition"], d["source_offset"]) for d in letters}) == len(CATALOGUE)
    assert all(d["source_topic"] == orders and d["detail"] for d in letters)
    whole = [d for d in letters if not d["payload_truncated"]]
    assert {base64.b64decode(d["payload_base64"]) for d in whole if d["payload_base64"] is not None} == {
        v for _, _, v in CATALOGUE if v is not None and len(v) < 500_000
    }
    assert [d["payload_base64"] for d in letters if d["reason"] == "null_value"] == [None]
    assert [d["payload_base64"] for d in letters if d["reason"] == "empty_value"] == [""]
    [cut] = [d for d in letters if d["payload_truncated"]]  # too big for a message even as a letter
    assert cut["payload_size"] == len(CATALOGUE[-1][2])
    good = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 2)
    assert sorted(p["order_id"] for p in good) == ["o-extra", "o-nullkey"]

    # Someone who can write to dead-letters forges a letter for payouts-approved, and garbage.
    approved = topics.payouts_approved.get_topic_name()
    forged = {
        **letters[0],
        "reason": "unknown_currency",
        "source_topic": approved,
        "payload_base64": base64.b64encode(FORGED).decode(),
    }
    await produce(
        bootstrap,
        topics.dead_letters.get_topic_name(),
        [(None, orjson.dumps(forged)), (None, b"\x1b[2Jgarbage")],
    )

    # The fix: JPY is accepted now. Redeploy, then replay only those dead letters, through the CLI.
    await pipeline.app.stop()
    fixed = pipeline_settings(currencies="EUR,USD,GBP,JPY")
    await start_pipeline(currencies="EUR,USD,GBP,JPY", web_port=fixed.web_port)
    dry = replay_cli(bootstrap, fixed, "--dry-run")
    assert dry[0] == f"would replay {len(CATALOGUE) - 2} dead letters ({len(CATALOGUE) - 2} to {orders})"
    assert dry[1:3] == [
        "refused 2: 1 not_a_dead_letter, 1 outcome_topic",
        "skipped 2: 1 null_payload, 1 truncated",
    ]
    listed = "\n".join(dry[3:])
    assert f"outcome_topic: names {approved} (unknown_currency)" in listed
    assert "not_a_dead_letter: invalid_json" in listed and "\x1b" not in listed
    assert f"truncated: only {512 * 1024} of {len(CATALOGUE[-1][2])} bytes" in listed

    output = replay_cli(bootstrap, fixed, "--reason", "unknown_currency")
    assert output[:2] == [
        f"replayed 1 dead letters (1 to {orders})",
        "refused 2: 1 not_a_dead_letter, 1 outcome_topic",
    ]
    replayed = await read_until(bootstrap, approved, lambda v: len(v) >= 3)
    assert "o-jpy" in {p["order_id"] for p in replayed}
    assert "99999.00" not in {p["net"] for p in replayed}


POISON_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


async def test_poison_orders_and_decisions_are_dead_lettered_and_two_workers_keep_going(
    bootstrap, start_pipeline
):
    settings = {**SHARED, "review_threshold": Decimal("500.00")}
    one, two = await start_pipeline(**settings), await start_pipeline(**settings)
    topics = one.topics
    [held] = await hold(bootstrap, one, ["o-held"])
    poison_orders = [
        (
            f"s-{n}".encode(),
            orjson.dumps({**SEED, "order_id": f"o-poison-{n}", "seller_id": f"s-{n}", "created_at": at}),
        )
        for n, at in enumerate(POISON_TIMES * 3)  # over several sellers: both workers get some
    ]
    forged = {"payout_id": held, "decision": "approve", "reviewer": "mallory", "reason": "x"}
    poison_decisions = [(held.encode(), orjson.dumps({**forged, "decided_at": at})) for at in POISON_TIMES]
    await produce(bootstrap, topics.orders.get_topic_name(), poison_orders)
    await produce(bootstrap, topics.review_decisions.get_topic_name(), poison_decisions)

    # Then good input: orders of a dozen sellers (every partition), and a real decision.
    good = [(f"s-{n}".encode(), order(f"o-good-{n}", "10.00", seller=f"s-{n}")) for n in range(12)]
    decision = {**forged, "reviewer": "risk-service", "decided_at": datetime.now(UTC).isoformat()}
    await produce(bootstrap, topics.orders.get_topic_name(), good)
    await produce(
        bootstrap, topics.review_decisions.get_topic_name(), [(held.encode(), orjson.dumps(decision))]
    )

    letters = await read_until(bootstrap, topics.dead_letters.get_topic_name(), lambda v: len(v) >= 8)
    where = sorted((letter["source_topic"], letter["reason"]) for letter in letters)
    assert where == sorted(
        [(topics.orders.get_topic_name(), "invalid_timestamp")] * 6
        + [(topics.review_decisions.get_topic_name(), "invalid_timestamp")] * 2
    )
    assert all("UTC" in letter["detail"] for letter in letters)
    done = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 13)
    assert {p["order_id"] for p in done} == {f"o-good-{n}" for n in range(12)} | {"o-held"}
    [approved] = [p for p in done if p["payout_id"] == held]
    assert approved["review"]["reviewer"] == "risk-service"
    for pipeline in (one, two):
        services = [pipeline.app, *(a for a in pipeline.agents.values() if isinstance(a, BatchAgent))]
        assert not [service for service in services if service.crashed]


FORGED_LINE = (
    "[2026-11-28 10:00:00,000] [1] [WARNING] review decision posted: payout_id=po-FAKE decision=approve"
)


def test_message_data_cannot_forge_or_colour_a_worker_log_line(processes, bootstrap, unique, tmp_path: Path):
    web = free_port()
    env = worker_env(bootstrap, unique, web, REVIEW_THRESHOLD="100.00", STOREFRONT_ORDERS_PER_SECOND="0")
    worker = spawn([sys.executable, "-m", "worker"], env, tmp_path, output=tmp_path / "output")
    processes.append(worker)
    poll_json(web, "/readyz", lambda ready: ready.get("ready") is True, timeout=60)
    seller = f"s-1\n{FORGED_LINE}\x1b[2K\x1b[31m\u202e"
    big = orjson.dumps({**SEED, "order_id": "o-inject", "seller_id": seller, "amount": "500.00"})
    asyncio.run(produce(bootstrap, f"{unique}-orders", [(b"s-1", big), (b"s-1\x1b[31m", b"not json")]))
    poll_json(
        web,
        "/stats",
        lambda s: s["reviews"]["pending"] > 0 and s["dead_letters"] > 0,  # held (and logged), and refused
        30,
    )

    output = stop(worker, tmp_path / "output")
    assert "payout held for review" in output and "dead letter from" in output  # the lines were logged
    assert not [line for line in output.splitlines() if "po-FAKE" in line and "seller_id=s-1\\n[" not in line]
    assert "seller_id=s-1\\n" + FORGED_LINE + "\\x1b[2K\\x1b[31m\\u202e" in output
    assert "\x1b" not in output and "\u202e" not in output
