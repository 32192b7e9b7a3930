"""Hypothesis fuzzes every decoder: any bytes either become a valid record or a clear InvalidRecord.

The decoders are orders, payouts, decisions (from the topic and from the API), dead letters and the
worker's own table states; each is fed random bytes, valid records with one field replaced by JSON of
any type, and timestamps at every UTC offset and at the edges of the datetime range.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_codec import SEED
from worker.errors import InvalidRecord
from worker.payouts.records import Order, decode_order, decode_payout
from worker.review.records import (
    PendingReview,
    ReviewDecision,
    ReviewedPayout,
    SellerHistory,
    decode_decision,
    decode_decision_request,
    decode_state,
)
from worker.runtime.deadletters import decode_dead_letter
from worker.wire import encode

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CURRENCIES = frozenset({"EUR", "USD", "GBP"})
FIELDS = ("order_id", "seller_id", "customer_id", "amount", "currency", "created_at")
MOMENT = "2026-11-28T10:00:00Z"
PAYOUT = {
    "payout_id": "po-1",
    "order_id": "o-1",
    "seller_id": "s-9",
    "gross": "120.00",
    "fee": "3.78",
    "net": "116.22",
    "currency": "EUR",
    "created_at": MOMENT,
    "order_created_at": MOMENT,
}
DECISION = {
    "payout_id": "po-1",
    "decision": "approve",
    "reviewer": "alice",
    "reason": "ok",
    "decided_at": MOMENT,
}
ENTRY = {"payout_id": "po-0", "net": "10.00", "currency": "EUR", "created_at": MOMENT}
LETTER = {
    "source_topic": "orders",
    "source_partition": 2,
    "source_offset": 17,
    "reason": "invalid_json",
    "detail": "unexpected character",
    "payload_base64": "Z2FyYmFnZQ==",
    "key_base64": None,
    "failed_at": MOMENT,
    "payload_size": 7,
    "payload_truncated": False,
}

#: Each decoder, a valid record for it, and its time fields (a path of keys to each).
DECODERS: dict[str, tuple[Callable[[bytes | None], Any], dict[str, Any], list[tuple[str, ...]]]] = {
    "order": (
        lambda raw: decode_order(raw, currencies=CURRENCIES, now=NOW),
        SEED,
        [("created_at",)],
    ),
    "payout": (decode_payout, PAYOUT, [("created_at",), ("order_created_at",)]),
    "decision": (decode_decision, DECISION, [("decided_at",)]),
    "decision request": (
        lambda raw: decode_decision_request(
            raw, payout_id="po-1", decision="reject", reviewer="alice", now=NOW
        ),
        {"reviewer": "alice", "reason": "stolen card"},
        [],
    ),
    "dead letter": (decode_dead_letter, LETTER, [("failed_at",)]),
    "pending review": (
        lambda raw: decode_state(raw, PendingReview),
        {"payout": PAYOUT, "held_at": MOMENT, "history": [ENTRY], "escalated_at": MOMENT},
        [("held_at",), ("escalated_at",), ("payout", "created_at")],
    ),
    "decided review": (
        lambda raw: decode_state(raw, ReviewedPayout),
        {**PAYOUT, "review": DECISION},
        [("created_at",), ("review", "decided_at")],
    ),
    "decision state": (lambda raw: decode_state(raw, ReviewDecision), DECISION, [("decided_at",)]),
    "seller history": (lambda raw: decode_state(raw, SellerHistory), {"payouts": [ENTRY]}, []),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
#: Every offset `datetime` can hold (to the second), and every instant from year 1 to year 9999.
offsets = st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s)))
edges = st.sampled_from([datetime.min, datetime.max, datetime(1970, 1, 1), datetime(2026, 11, 28, 10)])
moments = st.builds(lambda day, zone: day.replace(tzinfo=zone), edges | st.datetimes(), offsets)


def outcome(decoder: Callable[[bytes | None], Any], raw: bytes | None) -> Any:
    try:
        return decoder(raw)
    except InvalidRecord as error:
        assert error.reason and error.detail
        return error


def wire(record: dict[str, Any]) -> bytes:
    """JSON as any producer may write it: integers beyond 64 bits too (orjson cannot write them)."""
    return json.dumps(record).encode()


def replaced(record: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    head, *rest = path
    return {**record, head: replaced(record[head], tuple(rest), value) if rest else value}


@pytest.mark.parametrize("name", DECODERS)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(name: str, raw: bytes) -> None:
    outcome(DECODERS[name][0], raw)


@pytest.mark.parametrize("name", DECODERS)
@settings(max_examples=300)
@given(data=st.data(), value=json_values)
def test_any_json_in_any_field_is_decoded_or_refused_with_a_reason(
    name: str, data: Any, value: object
) -> None:
    decoder, seed, _ = DECODERS[name]
    paths = [(key,) for key in seed] + [
        (key, inner) for key in seed if isinstance(seed[key], dict) for inner in seed[key]
    ]
    record = replaced(seed, data.draw(st.sampled_from(paths)), value)
    result = outcome(decoder, wire(record))
    if not isinstance(result, InvalidRecord):  # accepted: it survives a round trip unchanged
        again = decode_decision if name == "decision request" else decoder  # a request is not a record
        assert again(encode(result)) == result


@pytest.mark.parametrize("name", [name for name, (_, _, times) in DECODERS.items() if times])
@settings(max_examples=300)
@given(data=st.data(), moment=moments)
def test_a_time_at_any_offset_and_any_edge_is_decoded_as_utc_or_refused(
    name: str, data: Any, moment: datetime
) -> None:
    decoder, seed, times = DECODERS[name]
    path = data.draw(st.sampled_from(times))
    result = outcome(decoder, wire(replaced(seed, path, moment.isoformat())))
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # UTC cannot hold it (year 1 at +01:00, year 9999 at -01:00)
        assert isinstance(result, InvalidRecord) and result.reason in {"invalid_timestamp", "invalid_state"}
        return
    if isinstance(result, InvalidRecord):
        assert name == "order" and result.reason == "future_timestamp" and utc > NOW
        return
    value = result
    for key in path:
        value = getattr(value, key)
    assert value == utc and value.tzinfo is UTC


@settings(max_examples=400)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "order_id": st.text(max_size=12) | json_values,
            "seller_id": st.text(max_size=12) | json_values,
            "customer_id": st.text(max_size=12) | json_values,
            "amount": st.decimals(allow_nan=True, allow_infinity=True).map(str)
            | st.text(max_size=10)
            | json_values,
            "currency": st.sampled_from(["EUR", "USD", "GBP", "JPY", "eur", ""]) | json_values,
            "created_at": moments.map(datetime.isoformat) | st.text(max_size=25),
        },
    ),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_near_valid_orders_decode_exactly_or_say_why(fields: dict, extra: dict) -> None:
    result = outcome(DECODERS["order"][0], wire({**extra, **fields}))
    if isinstance(result, InvalidRecord):
        return
    # Accepted: it is a real order, with an amount any service reads the same way.
    assert isinstance(result, Order)
    assert result.amount > 0 and result.amount == result.amount.quantize(Decimal("0.01"))
    assert fields["amount"].isascii() and fields["amount"].replace(".", "", 1).isdigit()
    assert result.currency in CURRENCIES and result.created_at <= NOW + timedelta(minutes=5)
    assert decode_order(encode(result), currencies=CURRENCIES, now=NOW) == result


@given(st.sampled_from(FIELDS), json_values)
def test_a_valid_order_with_one_field_replaced_is_decided_cleanly(field: str, value: object) -> None:
    outcome(DECODERS["order"][0], wire({**SEED, field: value}))
