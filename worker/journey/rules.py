"""The journey rules, as pure functions: merging what the topics say, the indexes, retention, the view.

A journey is a JSON document (see docs/journey.md) merged from patches (`worker.journey.events`) that
arrive in any order and may arrive again: each value is set by the first patch that knows it, and a
repeat changes nothing. The order and seller indexes keep payout ids, newest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from worker.journey.events import Event, Patch

#: Payout ids the seller index keeps (newest first); an order of one seller has one payout, but an
#: order id is unique per seller only, so the order index keeps every seller's.
SELLER_PAYOUTS = 20
ORDER_PAYOUTS = 100
#: Events per message of the journey feed (a record of a few hundred bytes each).
BUNDLE = 200


def merged(journey: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> Patch:
    """`journey` with what `patch` adds: a value already known stays, objects merge field by field."""
    result = dict(journey or {})
    for name, value in patch.items():
        known = result.get(name)
        if isinstance(known, Mapping) and isinstance(value, Mapping):
            result[name] = merged(known, value)
        elif known is None and value is not None:
            result[name] = value
    return result


def indexed(entry: Mapping[str, Any] | None, patch: Mapping[str, Any], limit: int) -> Patch:
    """An index entry with the patch's payout ids first (newest), each once, at most `limit`."""
    ids = [*patch.get("payout_ids", ()), *(entry or {}).get("payout_ids", ())]
    return {**(entry or {}), "payout_ids": list(dict.fromkeys(ids))[:limit]}


def applied(table: str, entry: Mapping[str, Any] | None, patches: Iterable[Patch], now: datetime) -> Patch:
    """A table entry (journeys, orders or sellers) after `patches`, stamped with `now` for retention."""
    result: Patch = dict(entry or {})
    for patch in patches:
        if table == "journeys":
            result = merged(result, patch)
        else:
            result = indexed(result, patch, SELLER_PAYOUTS if table == "sellers" else ORDER_PAYOUTS)
    result["updated_at"] = now.isoformat()
    return result


def expired(entry: Mapping[str, Any], now: datetime, retention: timedelta) -> bool:
    """True when nothing happened to the entry for longer than `retention`."""
    updated = entry.get("updated_at")
    if not isinstance(updated, str):
        return True  # not written by this version: nothing says it is recent
    try:
        return now - datetime.fromisoformat(updated) > retention
    except (ValueError, TypeError):
        return True


def bundles(events: Iterable[Event], partition_of: Callable[[str], int]) -> list[tuple[str, Patch]]:
    """The journey feed's messages for `events`: per partition of their keys, at most BUNDLE each, keyed
    by one of their keys (so that the message lands on that partition, with the tables it writes)."""
    by_partition: dict[int, list[Event]] = {}
    for event in events:
        by_partition.setdefault(partition_of(event[1]), []).append(event)
    messages = []
    for group in by_partition.values():
        for start in range(0, len(group), BUNDLE):
            chunk = group[start : start + BUNDLE]
            feed = [{"table": table, "key": key, "patch": patch} for table, key, patch in chunk]
            messages.append((chunk[0][1], {"events": feed}))
    return messages


def status(journey: Mapping[str, Any]) -> str:
    """Where the payout stands, in a few words."""
    settlement, review = journey.get("settlement") or {}, journey.get("review") or {}
    outcome = settlement.get("outcome") or settlement.get("ledger_state")
    if settlement.get("settled_at"):
        return f"settled ({outcome})"
    if outcome:
        return f"{outcome}, not settled yet"
    if review.get("escalated_at"):
        return "waiting for review (overdue, escalated)"
    if review.get("held_at") or (journey.get("screening") or {}).get("outcome") == "review":
        return "waiting for review"
    return "computed, not screened yet"


def view(journey: Mapping[str, Any]) -> Patch:
    """The journey as the API answers it: its status, and the settlement's steps in order."""
    settlement = dict(journey.get("settlement") or {})
    outcome = settlement.get("outcome") or settlement.get("ledger_state")
    steps = [(outcome, settlement.get("outcome_at")), ("settled", settlement.get("settled_at"))]
    settlement["steps"] = [{"step": step, "at": at} for step, at in steps if step and at]
    settlement["state"] = (
        "settled" if settlement.get("settled_at") else "awaiting settlement" if outcome else "not final"
    )
    return {"status": status(journey), **journey, "settlement": settlement}
