"""The wire format every topic shares: plain JSON in, plain JSON out.

`encode` turns whatever a stage publishes into bytes (money as decimal strings, times as ISO-8601 UTC,
no Faust metadata), and the field checks below turn JSON into checked values or raise InvalidRecord
with a stable reason. Each check is total: whatever JSON value it gets, it returns a value of the
promised type or raises InvalidRecord, never another exception (the fuzz tests hold them to it). The
records themselves live with their features; `RECORD_OPTIONS` and `checked` are how they are made.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import faust
import orjson

from worker.errors import InvalidRecord
from worker.reasons import Reason

R = TypeVar("R", bound=faust.Record)

#: How every record is declared: plain JSON (no Faust metadata), validated, ISO dates, Decimals.
RECORD_OPTIONS: dict[str, Any] = {
    "include_metadata": False,
    "validation": True,
    "isodates": True,
    "decimals": True,
}
#: Bigger than any real order; stops absurd values long before they overflow anything.
MAX_AMOUNT = Decimal("1000000000.00")
#: An order is a few hundred bytes; anything this big is a producer bug, not an order.
MAX_MESSAGE_BYTES = 64 * 1024
#: Money as every service reads it the same way: ASCII digits, then `.` and one or two decimals.
#: `Decimal()` also takes `1_000.00`, `+12.50`, ` 12.50 `, `1e3` and non-ASCII digits, which other
#: languages parse differently (`parseFloat("1_000.00")` is 1), so those are refused.
AMOUNT_SHAPE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def json_object(raw: bytes | None, *, limit: int | None = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The JSON object in `raw`, or InvalidRecord (null, empty, oversized, not JSON, not an object)."""
    if raw is None:
        raise InvalidRecord(Reason.NULL_VALUE, "the message has no value (a tombstone)")
    if not raw.strip():
        raise InvalidRecord(Reason.EMPTY_VALUE, "the message value is empty")
    if limit is not None and len(raw) > limit:
        raise InvalidRecord(Reason.OVERSIZED, f"{len(raw)} bytes, more than {limit}")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = Reason.INVALID_UTF8 if "utf-8" in str(exc).lower() else Reason.INVALID_JSON
        raise InvalidRecord(reason, str(exc)) from None
    return as_object(parsed, "the message")


def as_object(value: Any, name: str) -> dict[str, Any]:
    """`value` if it is a JSON object, else InvalidRecord."""
    if not isinstance(value, dict):
        reason = Reason.NOT_AN_OBJECT if name == "the message" else Reason.WRONG_TYPE
        raise InvalidRecord(reason, f"{name}: expected a JSON object, got {type(value).__name__}")
    return value


def field(fields: Mapping[str, Any], name: str) -> Any:
    """The value of a field that must be present and not null."""
    value = fields.get(name)
    if value is None:
        raise InvalidRecord(Reason.MISSING_FIELD, f"{name} is missing or null")
    return value


def text(fields: Mapping[str, Any], name: str, *, blank: bool = False) -> str:
    """A string field; a blank one only with `blank`."""
    value = field(fields, name)
    if not isinstance(value, str):
        raise InvalidRecord(Reason.WRONG_TYPE, f"{name} must be a string, got {type(value).__name__}")
    if not blank and not value.strip():
        raise InvalidRecord(Reason.MISSING_FIELD, f"{name} is empty")
    return value


def money(fields: Mapping[str, Any], name: str, *, positive: bool) -> Decimal:
    """A decimal string of cents, `"12.50"`: exact, at most two decimals, within MAX_AMOUNT."""
    value = field(fields, name)
    # A JSON number has already been through a float: refusing it keeps money exact.
    if not isinstance(value, str):
        raise InvalidRecord(Reason.WRONG_TYPE, f'{name} must be a decimal string like "12.50", got {value!r}')
    shape = AMOUNT_SHAPE.fullmatch(value)
    if shape is None:
        raise InvalidRecord(
            Reason.INVALID_AMOUNT, f"{name} must be digits with up to two decimals: {value!r:.60}"
        )
    sign, _, decimals = shape.groups()
    if decimals is not None and len(decimals) > 2:
        raise InvalidRecord(Reason.TOO_MANY_DECIMALS, f"{name} has more than two decimals: {value!r:.60}")
    amount = Decimal(value)
    if sign or (positive and amount == 0):
        raise InvalidRecord(Reason.NON_POSITIVE_AMOUNT, f"{name} must be above zero: {value!r:.60}")
    if amount > MAX_AMOUNT:
        raise InvalidRecord(Reason.AMOUNT_TOO_LARGE, f"{name} is above {MAX_AMOUNT}: {value!r:.60}")
    return amount.quantize(Decimal("0.01"))


def moment(fields: Mapping[str, Any], name: str, *, not_after: datetime | None = None) -> datetime:
    """An ISO-8601 time with a zone, as UTC; one that UTC cannot hold (year 1 at +01:00) is invalid."""
    value = text(fields, name)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise InvalidRecord(Reason.INVALID_TIMESTAMP, f"{name} has no time zone: {value!r:.60}")
        utc = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRecord(
            Reason.INVALID_TIMESTAMP, f"{name} is not a time in UTC range: {value!r:.60}"
        ) from None
    if not_after is not None and utc > not_after:
        raise InvalidRecord(Reason.FUTURE_TIMESTAMP, f"{name} is in the future: {value!r:.60}")
    return utc


def optional_text(fields: Mapping[str, Any], name: str) -> str | None:
    """A string as `text`, or None when the field is absent or null."""
    return None if fields.get(name) is None else text(fields, name)


def optional_money(fields: Mapping[str, Any], name: str) -> Decimal | None:
    """An amount as `money` (zero allowed), or None when the field is absent or null."""
    return None if fields.get(name) is None else money(fields, name, positive=False)


def optional_object(fields: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """A JSON object, as it is, or None when the field is absent or null."""
    value = fields.get(name)
    return None if value is None else as_object(value, name)


def optional_moment(fields: Mapping[str, Any], name: str) -> datetime | None:
    """A time as `moment`, or None when the field is absent or null."""
    return None if fields.get(name) is None else moment(fields, name)


def count(fields: Mapping[str, Any], name: str) -> int | None:
    """A whole number of 0 or more (a partition, an offset, a size), or None when absent or null."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRecord(
            Reason.WRONG_TYPE, f"{name} must be a whole number of 0 or more, got {value!r:.60}"
        )
    return value


def flag(fields: Mapping[str, Any], name: str) -> bool:
    """A boolean field; absent means false."""
    value = fields.get(name, False)
    if not isinstance(value, bool):
        raise InvalidRecord(Reason.WRONG_TYPE, f"{name} must be true or false, got {type(value).__name__}")
    return value


def base64_bytes(fields: Mapping[str, Any], name: str) -> str | None:
    """A base64 string (kept as sent) or null; the field must be present."""
    if name not in fields:
        raise InvalidRecord(Reason.MISSING_FIELD, f"{name} is missing (null stands for no bytes)")
    value = fields[name]
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord(Reason.WRONG_TYPE, f"{name} must be a base64 string or null")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRecord(Reason.INVALID_BASE64, f"{name} is not valid base64") from None
    return value


def items(fields: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """A list of JSON objects."""
    value = field(fields, name)
    if not isinstance(value, list):
        raise InvalidRecord(Reason.WRONG_TYPE, f"{name} must be a list, got {type(value).__name__}")
    return [as_object(item, f"{name}[{n}]") for n, item in enumerate(value)]


def encode(value: faust.Record | Mapping[str, Any] | list[Any] | str | bytes) -> bytes:
    """Serialize a record, a dict, a list, a str or bytes to the bytes that go on the wire.

    JSON comes back as an exact-size copy: orjson's output keeps the memory of its whole write buffer,
    and what is encoded is kept for a while (in a table for good, in an outbox until the broker has
    it). 100,000 ledger entries of ~180 bytes took 424 MB of RSS as orjson returned them and 36 MB
    as copies; at full speed a worker's outboxes held 98 MB of encoded payouts (memray), about 8 KB
    each.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, faust.Record):
        value = value.asdict()
    if isinstance(value, Mapping | list):
        return bytes(memoryview(orjson.dumps(value, default=_json_default, option=orjson.OPT_UTC_Z)))
    raise TypeError(f"cannot publish a {type(value).__name__}: give a Record, dict, list, str or bytes")


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


def checked(cls: type[R], **fields: Any) -> R:
    """A record of `cls` from values already checked by the field checks or computed by a rule.

    Faust's constructor validates and prepares every field again (~28 µs a record, most of a stage's
    work on the hot path); this one only checks that the record's fields are given (those with a
    default may be left out) and no others.
    """
    declared = cls._options.fields.keys()
    record = cls.__new__(cls)
    if fields.keys() == declared:  # every field given (the hot path): nothing to fill in
        record.__dict__.update(fields)
    else:
        defaults = cls._options.defaults
        missing = declared - fields.keys()
        if fields.keys() - declared or missing - defaults.keys():
            raise TypeError(f"{cls.__name__} needs exactly {sorted(declared)}, got {sorted(fields)}")
        record.__dict__.update({name: defaults[name] for name in missing}, **fields)
    record.__dict__["__evaluated_fields__"] = set()
    return record


def replaced(record: R, **changes: Any) -> R:
    """`record` with some fields changed, as `checked` builds it (Faust's `derive` validates again)."""
    if changes.keys() - record._options.fields.keys():
        raise TypeError(f"{type(record).__name__} has no field {sorted(changes)}")
    copy = type(record).__new__(type(record))
    copy.__dict__.update(record.__dict__, **changes, __evaluated_fields__=set())
    return copy
