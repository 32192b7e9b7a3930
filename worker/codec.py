"""Bytes on the wire <-> records: plain JSON, one way everywhere.

`encode` turns whatever a stage publishes into bytes; the `decode_*` functions turn bytes from a topic
into a validated record or raise `InvalidRecord` with a stable reason code, whatever the bytes (the
field checks are in `worker.fields`). Pure functions: no Faust app, no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

import faust
import orjson

from worker import fields as f
from worker.errors import InvalidRecord
from worker.records import (
    DeadLetter,
    Order,
    Payout,
    PendingReview,
    ReviewDecision,
    ReviewedPayout,
    SellerHistory,
    SellerPayout,
    checked,
)

R = TypeVar("R", bound=faust.Record)

#: How far in the future a producer's clock may run before its timestamp is refused.
CLOCK_SKEW = timedelta(minutes=5)
#: What a reviewer can decide.
DECISIONS = ("approve", "reject")
#: Longest reviewer name or reason kept in the audit record.
MAX_REVIEW_TEXT = 2000
#: What a reviewer's request body may hold.
REQUEST_FIELDS = ("reviewer", "reason")
#: The largest dead letter `decode_dead_letter` reads (a payload of 512 KiB, base64, and the rest).
MAX_DEAD_LETTER_BYTES = 1024 * 1024


def encode(value: faust.Record | Mapping[str, Any] | str | bytes) -> bytes:
    """Serialize a record, a dict, a str or bytes to the bytes that go on the wire."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, faust.Record):
        value = value.asdict()
    if isinstance(value, Mapping):
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_UTC_Z)
    raise TypeError(f"cannot publish a {type(value).__name__}: give a Record, dict, str or bytes")


def _json_default(value: Any) -> Any:
    # orjson writes datetimes itself (ISO-8601, `Z` for UTC); money is a string, never a float.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, faust.Record):
        return value.asdict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def b64(data: bytes | None) -> str | None:
    """Base64 of some bytes, keeping the difference between empty (`""`) and absent (`None`)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def decode_order(raw: bytes | None, *, currencies: Collection[str], now: datetime) -> Order:
    """Decode and validate an order from another service, or raise InvalidRecord."""
    fields = f.json_object(raw)
    return checked(
        Order,
        order_id=f.text(fields, "order_id"),
        seller_id=f.text(fields, "seller_id"),
        customer_id=f.text(fields, "customer_id"),
        amount=f.money(fields, "amount", positive=True),
        currency=_currency(fields, currencies),
        created_at=f.moment(fields, "created_at", not_after=now + CLOCK_SKEW),
    )


def decode_payout(raw: bytes | None) -> Payout:
    """Decode a payout written by this pipeline (or a compatible producer), or raise InvalidRecord."""
    return _payout(f.json_object(raw))


def decode_decision(raw: bytes | None) -> ReviewDecision:
    """Decode a review decision from `review-decisions` (the API, the CLI or another service)."""
    return _decision(f.json_object(raw))


def decode_decision_request(
    raw: bytes | None, *, payout_id: str, decision: str, reviewer: str, now: datetime
) -> ReviewDecision:
    """The decision `reviewer` (whom the request's token names) posts as `{"reason": ...}`.

    The audit record names whoever holds the token: a body may repeat that name, and any other is
    refused (`reviewer_mismatch`). Any other field is refused too (`unknown_field`): a request body is
    not a topic whose producers evolve first, and a field the API ignored (`"decision"`) would only
    mislead its sender.
    """
    fields = f.json_object(raw)
    _only(fields, REQUEST_FIELDS)
    claimed = fields.get("reviewer")
    if claimed is not None and (not isinstance(claimed, str) or claimed.strip() != reviewer):
        raise InvalidRecord("reviewer_mismatch", f"this token is {reviewer}'s: leave reviewer out")
    return _decision({"reason": fields.get("reason"), "reviewer": reviewer}, payout_id, decision, now)


def decode_dead_letter(raw: bytes | None) -> DeadLetter:
    """A record of `dead-letters`, or InvalidRecord when it is not a dead letter."""
    fields = f.json_object(raw, limit=MAX_DEAD_LETTER_BYTES)
    return checked(
        DeadLetter,
        source_topic=f.text(fields, "source_topic"),
        source_partition=f.count(fields, "source_partition"),
        source_offset=f.count(fields, "source_offset"),
        reason=f.text(fields, "reason"),
        detail=f.text(fields, "detail", blank=True),
        payload_base64=f.base64_bytes(fields, "payload_base64"),
        key_base64=f.base64_bytes(fields, "key_base64"),
        failed_at=f.moment(fields, "failed_at"),
        payload_size=f.count(fields, "payload_size"),
        payload_truncated=f.flag(fields, "payload_truncated"),
    )


def decode_state(raw: bytes | None, model: type[R]) -> R:
    """A record this worker wrote to one of its own tables or internal topics, or InvalidRecord."""
    decoder = _STATES.get(model)
    if decoder is None:
        raise TypeError(f"no state decoder for {model.__name__}")
    try:
        return cast(R, decoder(f.json_object(raw, limit=None)))
    except InvalidRecord as error:
        raise InvalidRecord("invalid_state", f"not a {model.__name__}: {error}") from None


def _payout(fields: Mapping[str, Any]) -> Payout:
    return checked(Payout, **_payout_fields(fields))


def _payout_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "payout_id": f.text(fields, "payout_id"),
        "order_id": f.text(fields, "order_id"),
        "seller_id": f.text(fields, "seller_id"),
        "gross": f.money(fields, "gross", positive=True),
        "fee": f.money(fields, "fee", positive=False),
        "net": f.money(fields, "net", positive=True),
        "currency": f.text(fields, "currency"),
        "created_at": f.moment(fields, "created_at"),
        "order_created_at": f.moment(fields, "order_created_at"),
    }


def _decision(
    fields: Mapping[str, Any],
    payout_id: str | None = None,
    decision: str | None = None,
    decided_at: datetime | None = None,
) -> ReviewDecision:
    return checked(
        ReviewDecision,
        payout_id=payout_id or f.text(fields, "payout_id"),
        decision=decision or _verdict(fields),
        reviewer=_review_text(fields, "reviewer"),
        reason=_review_text(fields, "reason"),
        decided_at=decided_at or f.moment(fields, "decided_at"),
    )


def _pending(fields: Mapping[str, Any]) -> PendingReview:
    return checked(
        PendingReview,
        payout=_payout(f.as_object(f.field(fields, "payout"), "payout")),
        held_at=f.moment(fields, "held_at"),
        history=_history_entries(fields),
        escalated_at=f.optional_moment(fields, "escalated_at"),
    )


def _history(fields: Mapping[str, Any]) -> SellerHistory:
    return checked(SellerHistory, payouts=_history_entries(fields, "payouts"))


def _history_entries(fields: Mapping[str, Any], name: str = "history") -> list[SellerPayout]:
    return [
        checked(
            SellerPayout,
            payout_id=f.text(entry, "payout_id"),
            net=f.money(entry, "net", positive=True),
            currency=f.text(entry, "currency"),
            created_at=f.moment(entry, "created_at"),
        )
        for entry in f.items(fields, name)
    ]


def _reviewed(fields: Mapping[str, Any]) -> ReviewedPayout:
    review = _decision(f.as_object(f.field(fields, "review"), "review"))
    return checked(ReviewedPayout, **_payout_fields(fields), review=review)


_STATES: dict[type[faust.Record], Callable[[Mapping[str, Any]], faust.Record]] = {
    Payout: _payout,
    PendingReview: _pending,
    ReviewDecision: _decision,
    ReviewedPayout: _reviewed,
    SellerHistory: _history,
}


def _only(fields: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(name for name in fields if name not in allowed)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise InvalidRecord("unknown_field", f"only {', '.join(allowed)} may be sent, not {names:.100}")


def _verdict(fields: Mapping[str, Any]) -> str:
    decision = f.text(fields, "decision")
    if decision not in DECISIONS:
        raise InvalidRecord("unknown_decision", f"decision must be approve or reject, got {decision!r:.60}")
    return decision


def _review_text(fields: Mapping[str, Any], name: str) -> str:
    text = f.text(fields, name).strip()
    if len(text) > MAX_REVIEW_TEXT:
        raise InvalidRecord("text_too_long", f"{name} is longer than {MAX_REVIEW_TEXT} characters")
    return text


def _currency(fields: Mapping[str, Any], currencies: Collection[str]) -> str:
    code = f.text(fields, "currency")
    if code not in currencies:
        raise InvalidRecord(
            "unknown_currency", f"currency {code!r:.60} is not one of {', '.join(sorted(currencies))}"
        )
    return code
