"""Bytes on the wire <-> records: plain JSON, one way everywhere.

`encode` turns whatever a stage publishes into bytes; the `decode_*` functions turn bytes from a topic
into a validated record or raise `InvalidRecord` with a stable reason code. Pure functions: no Faust
app, no I/O.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import faust
import orjson

from worker.errors import InvalidRecord
from worker.records import Order, Payout, ReviewDecision, checked

R = TypeVar("R", bound=faust.Record)

#: Bigger than any real order; stops absurd values (1e300) long before they overflow anything.
MAX_AMOUNT = Decimal("1000000000.00")
#: An order is a few hundred bytes; anything this big is a producer bug, not an order.
MAX_MESSAGE_BYTES = 64 * 1024
#: How far in the future a producer's clock may run before its timestamp is refused.
CLOCK_SKEW = timedelta(minutes=5)
#: What a reviewer can decide.
DECISIONS = ("approve", "reject")
#: Longest reviewer name or reason kept in the audit record.
MAX_REVIEW_TEXT = 2000


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
    fields = _object(raw)
    return checked(
        Order,
        order_id=_text(fields, "order_id"),
        seller_id=_text(fields, "seller_id"),
        customer_id=_text(fields, "customer_id"),
        amount=_money(fields, "amount", positive=True),
        currency=_currency(fields, currencies),
        created_at=_moment(fields, "created_at", not_after=now + CLOCK_SKEW),
    )


def decode_payout(raw: bytes | None) -> Payout:
    """Decode a payout written by this pipeline (or a compatible producer), or raise InvalidRecord."""
    fields = _object(raw)
    return checked(
        Payout,
        payout_id=_text(fields, "payout_id"),
        order_id=_text(fields, "order_id"),
        seller_id=_text(fields, "seller_id"),
        gross=_money(fields, "gross", positive=True),
        fee=_money(fields, "fee", positive=False),
        net=_money(fields, "net", positive=True),
        currency=_text(fields, "currency"),
        created_at=_moment(fields, "created_at"),
        order_created_at=_moment(fields, "order_created_at"),
    )


def decode_decision(raw: bytes | None) -> ReviewDecision:
    """Decode a review decision from `review-decisions` (the API, the CLI or another service)."""
    fields = _object(raw)
    return ReviewDecision(
        payout_id=_text(fields, "payout_id"),
        decision=_decision(fields),
        reviewer=_review_text(fields, "reviewer"),
        reason=_review_text(fields, "reason"),
        decided_at=_moment(fields, "decided_at"),
    )


def decode_decision_request(
    raw: bytes | None, *, payout_id: str, decision: str, now: datetime
) -> ReviewDecision:
    """The decision a reviewer posts as `{"reviewer": ..., "reason": ...}`, or InvalidRecord."""
    fields = _object(raw)
    return decode_decision(
        encode({**fields, "payout_id": payout_id, "decision": decision, "decided_at": now.isoformat()})
    )


def decode_state(raw: bytes | None, model: type[R]) -> R:
    """A record this worker wrote to one of its own tables or internal topics, or InvalidRecord."""
    fields = _object(raw)
    try:
        return model.from_data(fields)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidRecord("invalid_state", f"not a {model.__name__}: {exc}") from None


def _decision(fields: Mapping[str, Any]) -> str:
    decision = _text(fields, "decision")
    if decision not in DECISIONS:
        raise InvalidRecord("unknown_decision", f"decision must be approve or reject, got {decision!r}")
    return decision


def _review_text(fields: Mapping[str, Any], name: str) -> str:
    text = _text(fields, name).strip()
    if len(text) > MAX_REVIEW_TEXT:
        raise InvalidRecord("text_too_long", f"{name} is longer than {MAX_REVIEW_TEXT} characters")
    return text


def _object(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise InvalidRecord("null_value", "the message has no value (a tombstone)")
    if not raw.strip():
        raise InvalidRecord("empty_value", "the message value is empty")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidRecord("oversized", f"{len(raw)} bytes, more than {MAX_MESSAGE_BYTES}")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "invalid_utf8" if "utf-8" in str(exc).lower() else "invalid_json"
        raise InvalidRecord(reason, str(exc)) from None
    if not isinstance(parsed, dict):
        raise InvalidRecord("not_an_object", f"expected a JSON object, got {type(parsed).__name__}")
    return parsed


def _field(fields: Mapping[str, Any], name: str) -> Any:
    value = fields.get(name)
    if value is None:
        raise InvalidRecord("missing_field", f"{name} is missing or null")
    return value


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = _field(fields, name)
    if not isinstance(value, str):
        raise InvalidRecord("wrong_type", f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidRecord("missing_field", f"{name} is empty")
    return value


def _money(fields: Mapping[str, Any], name: str, *, positive: bool) -> Decimal:
    value = _field(fields, name)
    # A JSON number has already been through a float: refusing it keeps money exact.
    if not isinstance(value, str):
        raise InvalidRecord("wrong_type", f'{name} must be a decimal string like "12.50", got {value!r}')
    amount: Decimal = _parse(value, Decimal, name, "invalid_amount")
    if not amount.is_finite():
        raise InvalidRecord("invalid_amount", f"{name} is not a finite number: {value!r}")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator,unused-ignore]
        raise InvalidRecord("too_many_decimals", f"{name} has more than two decimals: {value!r}")
    if amount < 0 or (positive and amount == 0):
        raise InvalidRecord("non_positive_amount", f"{name} must be above zero: {value!r}")
    if amount > MAX_AMOUNT:
        raise InvalidRecord("amount_too_large", f"{name} is above {MAX_AMOUNT}: {value!r}")
    return amount.quantize(Decimal("0.01"))


def _currency(fields: Mapping[str, Any], currencies: Collection[str]) -> str:
    code = _text(fields, "currency")
    if code not in currencies:
        raise InvalidRecord(
            "unknown_currency", f"currency {code!r} is not one of {', '.join(sorted(currencies))}"
        )
    return code


def _moment(fields: Mapping[str, Any], name: str, *, not_after: datetime | None = None) -> datetime:
    text = _text(fields, name)
    moment: datetime = _parse(text, datetime.fromisoformat, name, "invalid_timestamp")
    if moment.tzinfo is None:
        raise InvalidRecord("invalid_timestamp", f"{name} has no time zone: {text!r}")
    moment = moment.astimezone(UTC)
    if not_after is not None and moment > not_after:
        raise InvalidRecord("future_timestamp", f"{name} is in the future: {text!r}")
    return moment


def _parse(text: str, parse: Callable[[str], Any], name: str, reason: str) -> Any:
    try:
        value = parse(text)
    except (ValueError, InvalidOperation, OverflowError):
        raise InvalidRecord(reason, f"{name} cannot be parsed: {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRecord(reason, f"{name} is not finite: {text!r}")
    return value
