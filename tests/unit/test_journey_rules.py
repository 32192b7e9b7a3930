"""The journey rules (pure): what each topic says, merging in any order, indexes, retention, the view."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import orjson

from worker.journey.events import events_of
from worker.journey.rules import BUNDLE, SELLER_PAYOUTS, applied, bundles, expired, indexed, merged, view

PAYOUT = {
    "payout_id": "po-1",
    "order_id": "o-1",
    "seller_id": "s-1",
    "customer_id": "c-1",
    "gross": "2000.00",
    "fee": "58.30",
    "net": "1941.70",
    "currency": "EUR",
    "created_at": "2026-11-28T10:00:01Z",
    "order_created_at": "2026-11-28T10:00:00Z",
    "order_topic": "orders",
    "order_partition": 2,
    "order_offset": 17,
    "fee_rate": "0.029",
    "fee_fixed": "0.30",
    "review_threshold": "500.00",
}
REVIEW = {
    "decision": "reject",
    "reviewer": "bob",
    "reason": "stolen card",
    "decided_at": "2026-11-28T11:00:00Z",
}
SETTLED = {
    "payout_id": "po-1",
    "seller_id": "s-1",
    "state": "rejected",
    "net": "1941.70",
    "currency": "EUR",
    "settled_at": "2026-11-28T11:00:02Z",
    "ledger_partition": 1,
}

#: When the intake read the records (their Kafka timestamps).
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def said(reader: str, value: dict) -> list:
    return events_of(reader, orjson.dumps(value), NOW)


def story() -> list[dict]:
    """Every patch of a held, escalated and rejected payout."""
    held = {"payout": PAYOUT, "held_at": "2026-11-28T10:00:02Z", "history": []}
    escalation = {**held, "escalated_at": "2026-11-28T10:30:00Z", "sla_seconds": 1800}
    events = [
        *said("payouts", PAYOUT),
        *said("payouts-review", PAYOUT),
        *said("held-reviews", held),
        *said("payouts-review-escalated", escalation),
        *said("payouts-rejected", {**PAYOUT, "review": REVIEW}),
        *said("settlement-ledger", SETTLED),
    ]
    return [patch for table, _, patch in events if table == "journeys"]


def test_the_journey_is_the_same_whatever_order_its_steps_arrive_in() -> None:
    patches = story()
    journeys = set()
    for order in itertools.islice(itertools.permutations(patches), 0, None, 37):
        journey = {}
        for patch in order:
            journey = merged(journey, patch)
        journeys.add(orjson.dumps(journey, option=orjson.OPT_SORT_KEYS))
    [one] = journeys
    journey = view(orjson.loads(one))
    assert journey["status"] == "settled (rejected)"
    assert journey["order"] == {
        "topic": "orders",
        "partition": 2,
        "offset": 17,
        "created_at": "2026-11-28T10:00:00Z",
    }
    assert journey["fee"] == {
        "rate": "0.029",
        "fixed": "0.30",
        "gross": "2000.00",
        "fee": "58.30",
        "net": "1941.70",
    }
    assert journey["screening"] == {"outcome": "review", "threshold": "500.00", "at": "2026-11-28T12:00:00Z"}
    assert journey["review"] == {
        "held_at": "2026-11-28T10:00:02Z",
        "escalated_at": "2026-11-28T10:30:00Z",
        "decision": "reject",
        "decided_by": "bob",
        "reason": "stolen card",
        "decided_at": "2026-11-28T11:00:00Z",
    }
    assert journey["settlement"]["steps"] == [
        {"step": "rejected", "at": "2026-11-28T12:00:00Z"},
        {"step": "settled", "at": "2026-11-28T11:00:02Z"},
    ]


def test_a_repeat_changes_nothing_and_the_first_known_value_stays() -> None:
    once = merged({}, story()[0])
    assert merged(once, story()[0]) == once
    assert merged(once, {"customer_id": "c-other", "fee": {"net": "1.00"}})["fee"]["net"] == "1941.70"


def test_an_approved_payout_without_review_was_approved_by_screening() -> None:
    [(_, key, patch)] = said("payouts-approved", {**PAYOUT, "review_threshold": "1000.00"})
    journey = view(merged({}, patch))
    assert key == "po-1" and journey["screening"]["outcome"] == "approved"
    assert journey["status"] == "approved, not settled yet" and "review" not in journey


def test_a_record_that_does_not_decode_says_nothing() -> None:
    assert events_of("payouts", b"{not json", NOW) == []
    assert events_of("settlement-ledger", None, NOW) == []  # a tombstone
    assert said("payouts", {**PAYOUT, "net": 12.5}) == []


def test_indexes_keep_payout_ids_newest_first_once_each_up_to_their_limit() -> None:
    entry = None
    for n in range(SELLER_PAYOUTS + 5):
        entry = applied("sellers", entry, [{"payout_ids": [f"po-{n}"]}, {"payout_ids": [f"po-{n}"]}], NOW)
    assert entry["payout_ids"] == [f"po-{n}" for n in reversed(range(5, SELLER_PAYOUTS + 5))]
    assert indexed({"payout_ids": ["po-a"]}, {"payout_ids": ["po-b"]}, 100)["payout_ids"] == ["po-b", "po-a"]


def test_entries_expire_after_retention_since_their_last_step() -> None:
    entry = applied("journeys", None, story(), NOW)
    assert not expired(entry, NOW + timedelta(days=29), timedelta(days=30))
    assert expired(entry, NOW + timedelta(days=31), timedelta(days=30))
    assert expired({"payout_id": "po-1"}, NOW, timedelta(days=30))  # no time: nothing says it is recent


def test_feed_messages_carry_only_keys_of_their_partition_and_at_most_a_bundle_each() -> None:
    events = [("journeys", f"po-{n}", {}) for n in range(BUNDLE * 3)]
    messages = bundles(events, lambda key: int(key[3:]) % 3)
    for key, message in messages:
        keys = [event["key"] for event in message["events"]]
        assert len(keys) <= BUNDLE and {int(k[3:]) % 3 for k in keys} == {int(key[3:]) % 3}
    assert sorted(e["key"] for _, m in messages for e in m["events"]) == sorted(k for _, k, _ in events)
