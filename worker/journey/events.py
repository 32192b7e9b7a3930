"""What each topic a payout passes through says about its journey: a patch, as pure functions.

A patch is a part of the journey document (`worker.journey.rules`), with plain JSON values: money as
decimal strings, times as ISO-8601 UTC. The journey stage merges patches in any order, so each topic
only says what it knows. A record that does not decode says nothing: the stage that owns its topic
dead-letters it, and the journey only observes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from worker import wire as f
from worker.errors import InvalidRecord
from worker.payouts.records import Payout, payout_from

#: A patch: a part of a journey document.
Patch = dict[str, Any]
#: What one record says: (table, key, patch) for the journeys, orders and sellers tables.
Event = tuple[str, str, Patch]


def _when(moment: datetime | None) -> str | None:
    # As the wire writes times: ISO-8601 UTC with `Z`.
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _money(amount: Any) -> str | None:
    return None if amount is None else str(amount)


def payout_patch(payout: Payout) -> Patch:
    """What any record carrying the payout says: who, the order, the fee as computed."""
    return {
        "payout_id": payout.payout_id,
        "order_id": payout.order_id,
        "seller_id": payout.seller_id,
        "customer_id": payout.customer_id,
        "currency": payout.currency,
        "computed_at": _when(payout.created_at),
        "order": {
            "topic": payout.order_topic,
            "partition": payout.order_partition,
            "offset": payout.order_offset,
            "created_at": _when(payout.order_created_at),
        },
        "fee": {
            "rate": _money(payout.fee_rate),
            "fixed": _money(payout.fee_fixed),
            "gross": _money(payout.gross),
            "fee": _money(payout.fee),
            "net": _money(payout.net),
        },
    }


def computed(fields: Mapping[str, Any], at: datetime) -> list[Event]:
    """`payouts`: the payout as computed, and its place in the order and seller indexes."""
    payout = payout_from(fields)
    entry = {"payout_ids": [payout.payout_id]}
    return [
        ("journeys", payout.payout_id, payout_patch(payout)),
        ("orders", payout.order_id, entry),
        ("sellers", payout.seller_id, entry),
    ]


def routed(outcome: str) -> Callable[[Mapping[str, Any], datetime], list[Event]]:
    """`payouts-approved` and `payouts-rejected` (a final outcome, after a review or not) and
    `payouts-review` (screened for a person)."""

    def events(fields: Mapping[str, Any], at: datetime) -> list[Event]:
        payout = payout_from(fields)
        patch = payout_patch(payout)
        review = fields.get("review")
        if isinstance(review, dict):  # decided by a person: screening had held it
            patch["review"] = _decision(review)
        else:  # screening's own outcome
            threshold = _money(payout.review_threshold)
            patch["screening"] = {"outcome": outcome, "threshold": threshold, "at": _when(at)}
        if outcome != "review":
            patch["settlement"] = {"outcome": outcome, "outcome_at": _when(at)}
        return [("journeys", payout.payout_id, patch)]

    return events


def _decision(review: Mapping[str, Any]) -> Patch:
    return {
        "decision": f.text(review, "decision"),
        "decided_by": f.text(review, "reviewer"),
        "reason": f.text(review, "reason", blank=True),
        "decided_at": _when(f.moment(review, "decided_at")),
    }


def held(fields: Mapping[str, Any], at: datetime) -> list[Event]:
    """`<app>-held-reviews`: the payout is waiting for a person since `held_at`."""
    payout = payout_from(f.as_object(f.field(fields, "payout"), "payout"))
    patch = payout_patch(payout)
    patch["review"] = {"held_at": _when(f.moment(fields, "held_at"))}
    return [("journeys", payout.payout_id, patch)]


def escalated(fields: Mapping[str, Any], at: datetime) -> list[Event]:
    """`payouts-review-escalated`: it waited longer than the review SLA."""
    payout = payout_from(f.as_object(f.field(fields, "payout"), "payout"))
    patch = payout_patch(payout)
    held_at, escalated_at = f.moment(fields, "held_at"), f.moment(fields, "escalated_at")
    patch["review"] = {"held_at": _when(held_at), "escalated_at": _when(escalated_at)}
    return [("journeys", payout.payout_id, patch)]


def settled(fields: Mapping[str, Any], at: datetime) -> list[Event]:
    """The settlement ledger's changelog: the payout is settled in the ledger."""
    payout_id = f.text(fields, "payout_id")
    patch = {
        "payout_id": payout_id,
        "seller_id": f.text(fields, "seller_id"),
        "currency": f.text(fields, "currency"),
        "settlement": {
            "ledger_state": f.text(fields, "state"),
            "settled_at": _when(f.moment(fields, "settled_at")),
        },
    }
    return [("journeys", payout_id, patch)]


#: What each source topic (by its name before `TOPIC_PREFIX`) says.
READERS: dict[str, Callable[[Mapping[str, Any], datetime], list[Event]]] = {
    "payouts": computed,
    "payouts-approved": routed("approved"),
    "payouts-rejected": routed("rejected"),
    "payouts-review": routed("review"),
    "payouts-review-escalated": escalated,
    "held-reviews": held,
    "settlement-ledger": settled,
}


def events_of(reader: str, raw: bytes | None, at: datetime) -> list[Event]:
    """What a record of a source topic says; nothing when it does not decode."""
    try:
        return READERS[reader](f.json_object(raw, limit=None), at)
    except InvalidRecord:
        return []
