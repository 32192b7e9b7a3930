"""A payout's journey from what the tables and the final topic hold about it, as pure functions.

Facts (JSON, as each worker answers them for the partitions it owns, `worker.journey.facts`):

    ledger    the settlement-ledger entry: state, settled_at, where the payout was read (topic,
              partition, offset)
    record    that payout as its final topic still holds it: the payout, its trace id, its time
    pending   the pending review: the payout, held_at, escalated_at, traceparent
    decided   the reviewed payout: the payout with the decision, held_at, escalated_at

The payout's own fields (order origin, fee schedule, threshold) come from the most final of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: A JSON object.
Doc = dict[str, Any]
FACTS = ("ledger", "record", "pending", "decided")


def merged_facts(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, Doc]:
    """Every worker's facts (payout_id -> facts) as one: each fact comes from the worker that owns it."""
    merged: dict[str, Doc] = {}
    for part in parts:
        for payout_id, facts in part.items():
            merged.setdefault(payout_id, {}).update({k: v for k, v in facts.items() if k in FACTS and v})
    return merged


def journey(payout_id: str, facts: Mapping[str, Any]) -> Doc | None:
    """The payout's journey (docs/journey.md), or None when nothing is known of it."""
    ledger, record = facts.get("ledger") or {}, facts.get("record") or {}
    pending, decided = facts.get("pending") or {}, facts.get("decided") or {}
    payout = record.get("payout") or decided or pending.get("payout")
    if not (payout or ledger):
        return None
    payout = payout or {}
    applied = payout.get("applied") or {}
    review = _review(pending, decided or payout)
    settlement = _settlement(ledger, record, review)
    trace_id = record.get("trace_id") or _trace_id(pending.get("traceparent"))
    found: Doc = {
        "payout_id": payout_id,
        "order_id": payout.get("order_id"),
        "seller_id": payout.get("seller_id") or ledger.get("seller_id"),
        "customer_id": payout.get("customer_id"),
        "currency": payout.get("currency") or ledger.get("currency"),
        "trace_id": trace_id,
        "order": {
            "topic": payout.get("order_topic"),
            "partition": payout.get("order_partition"),
            "offset": payout.get("order_offset"),
            "created_at": payout.get("order_created_at"),
        },
        "fee": {
            "rate": applied.get("fee_rate"),
            "fixed": applied.get("fee_fixed"),
            "gross": payout.get("gross"),
            "fee": payout.get("fee"),
            "net": payout.get("net") or ledger.get("net"),
        },
        "computed_at": payout.get("created_at"),
        "screening": _screening(applied.get("review_threshold"), review, record),
        "review": review,
        "settlement": settlement,
        "details_expired": bool(ledger) and not record,
    }
    return {"status": status(found), **found}


def _review(pending: Mapping[str, Any], decided: Mapping[str, Any]) -> Doc | None:
    held = decided.get("held_at") or pending.get("held_at")
    decision = decided.get("review") or {}
    if not (held or decision):
        return None  # approved by screening: no person saw it
    return {
        "held_at": held,
        "escalated_at": decided.get("escalated_at") or pending.get("escalated_at"),
        "decision": decision.get("decision"),
        "decided_by": decision.get("reviewer"),
        "reason": decision.get("reason"),
        "decided_at": decision.get("decided_at"),
    }


def _screening(threshold: str | None, review: Mapping[str, Any] | None, record: Mapping[str, Any]) -> Doc:
    if review is not None:
        return {"outcome": "review", "threshold": threshold, "at": None}
    outcome = "approved" if record else None  # on payouts-approved without a review: screening's doing
    return {"outcome": outcome, "threshold": threshold, "at": record.get("at")}


def _settlement(
    ledger: Mapping[str, Any], record: Mapping[str, Any], review: Mapping[str, Any] | None
) -> Doc:
    decision = (review or {}).get("decision")
    outcome = ledger.get("state") or {"approve": "approved", "reject": "rejected"}.get(decision or "")
    outcome_at = record.get("at") or (review or {}).get("decided_at")
    steps = [(outcome, outcome_at), ("settled", ledger.get("settled_at"))]
    return {
        "state": "settled" if ledger else "awaiting settlement" if outcome else "not final",
        "outcome": outcome,
        "outcome_at": outcome_at,
        "settled_at": ledger.get("settled_at"),
        "steps": [{"step": step, "at": at} for step, at in steps if step and at],
    }


def _trace_id(traceparent: str | None) -> str | None:
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 else None


def status(journey: Mapping[str, Any]) -> str:
    """Where the payout stands, in a few words."""
    settlement, review = journey["settlement"], journey.get("review") or {}
    if settlement["state"] == "settled":
        return f"settled ({settlement['outcome']})"
    if settlement["outcome"]:
        return f"{settlement['outcome']}, not settled yet"
    if review.get("escalated_at"):
        return "waiting for review (overdue, escalated)"
    return "waiting for review"  # no outcome: only a pending review knows of it
