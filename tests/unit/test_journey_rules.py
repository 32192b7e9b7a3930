"""The journey rules (pure): a journey from the facts the ledger, the final topic and the review tables
hold, gathered from several workers."""

from __future__ import annotations

from typing import Any

from worker.journey.rules import journey, merged_facts

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
    "applied": {"fee_rate": "0.029", "fee_fixed": "0.30", "review_threshold": "500.00"},
}
DECISION = {
    "decision": "reject",
    "reviewer": "bob",
    "reason": "stolen card",
    "decided_at": "2026-11-28T11:00:00Z",
}
HELD = {"held_at": "2026-11-28T10:00:02Z", "escalated_at": "2026-11-28T10:30:00Z"}
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def ledger(state: str) -> dict[str, Any]:
    return {
        "payout_id": "po-1",
        "seller_id": "s-1",
        "state": state,
        "net": "1941.70",
        "currency": "EUR",
        "settled_at": "2026-11-28T11:00:02Z",
        "ledger_partition": 3,
        "offset": 40,
        "topic": f"payouts-{state}",
    }


def record(payout: dict[str, Any]) -> dict[str, Any]:
    return {"payout": payout, "trace_id": TRACE, "at": "2026-11-28T11:00:01Z"}


def test_a_payout_approved_by_screening_and_settled() -> None:
    found = journey("po-1", {"ledger": ledger("approved"), "record": record(PAYOUT)})

    assert found is not None and found["status"] == "settled (approved)"
    assert found["order"] == {
        "topic": "orders",
        "partition": 2,
        "offset": 17,
        "created_at": PAYOUT["order_created_at"],
    }
    assert found["fee"] == {
        "rate": "0.029",
        "fixed": "0.30",
        "gross": "2000.00",
        "fee": "58.30",
        "net": "1941.70",
    }
    assert found["screening"] == {"outcome": "approved", "threshold": "500.00", "at": "2026-11-28T11:00:01Z"}
    assert found["review"] is None and found["trace_id"] == TRACE and not found["details_expired"]
    assert [s["step"] for s in found["settlement"]["steps"]] == ["approved", "settled"]


def test_a_payout_waiting_past_the_sla() -> None:
    pending = {"payout": PAYOUT, **HELD, "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}

    found = journey("po-1", {"pending": pending})

    assert found is not None and found["status"] == "waiting for review (overdue, escalated)"
    assert found["screening"]["outcome"] == "review" and found["settlement"]["state"] == "not final"
    assert found["review"]["held_at"] == HELD["held_at"] and found["trace_id"] == TRACE


def test_a_rejected_payout_gathered_from_two_workers() -> None:
    # The ledger entry lives with the seller's partition, the review with the payout id's.
    reviewed = {**PAYOUT, "review": DECISION, **HELD}
    settled_here = {"po-1": {"ledger": ledger("rejected"), "record": record(reviewed)}}
    reviewed_there = {"po-1": {"decided": reviewed, "pending": None}}

    found = journey("po-1", merged_facts([settled_here, reviewed_there])["po-1"])

    assert found is not None and found["status"] == "settled (rejected)"
    assert found["review"] == {**HELD, "decision": "reject", "decided_by": "bob", **_reason_and_time()}
    assert [s["step"] for s in found["settlement"]["steps"]] == ["rejected", "settled"]


def _reason_and_time() -> dict[str, str]:
    return {"reason": "stolen card", "decided_at": DECISION["decided_at"]}


def test_a_decided_payout_not_settled_yet() -> None:
    found = journey("po-1", {"decided": {**PAYOUT, "review": DECISION, **HELD}})

    assert found is not None and found["status"] == "rejected, not settled yet"
    assert found["settlement"]["state"] == "awaiting settlement"


def test_past_the_topics_retention_the_ledger_entry_remains() -> None:
    found = journey("po-1", {"ledger": ledger("approved")})

    assert found is not None and found["status"] == "settled (approved)" and found["details_expired"]
    assert (found["seller_id"], found["fee"]["net"], found["order"]["topic"]) == ("s-1", "1941.70", None)


def test_nothing_known_is_no_journey() -> None:
    assert journey("po-1", {}) is None
    assert merged_facts([{"po-1": {"pending": None, "decided": None}}]) == {"po-1": {}}
