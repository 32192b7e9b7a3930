"""Hypothesis fuzzes the decoder: any bytes either become a valid order or a clear InvalidRecord."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_codec import SEED
from worker.codec import decode_order, encode
from worker.errors import InvalidRecord
from worker.records import Order

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CURRENCIES = frozenset({"EUR", "USD", "GBP"})
FIELDS = ("order_id", "seller_id", "customer_id", "amount", "currency", "created_at")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
plausible = {
    "order_id": st.text(max_size=12) | json_values,
    "seller_id": st.text(max_size=12) | json_values,
    "customer_id": st.text(max_size=12) | json_values,
    "amount": st.decimals(allow_nan=True, allow_infinity=True).map(str) | st.text(max_size=10) | json_values,
    "currency": st.sampled_from(["EUR", "USD", "GBP", "JPY", "eur", ""]) | json_values,
    "created_at": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | st.text(max_size=25),
}


def outcome(raw: bytes | None) -> Order | InvalidRecord:
    try:
        return decode_order(raw, currencies=CURRENCIES, now=NOW)
    except InvalidRecord as error:
        return error


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_error(raw: bytes) -> None:
    result = outcome(raw)
    assert isinstance(result, Order | InvalidRecord)


@settings(max_examples=400)
@given(
    st.fixed_dictionaries({}, optional=plausible),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_near_valid_orders_decode_exactly_or_say_why(fields: dict, extra: dict) -> None:
    raw = orjson.dumps({**extra, **fields})
    result = outcome(raw)
    if isinstance(result, InvalidRecord):
        assert result.reason and result.detail
        return
    # Accepted: it is a real order, and it survives a round trip unchanged.
    assert result.amount > 0 and result.amount == result.amount.quantize(Decimal("0.01"))
    assert result.currency in CURRENCIES and result.created_at <= NOW.replace(minute=5)
    assert decode_order(encode(result), currencies=CURRENCIES, now=NOW) == result


@given(st.sampled_from(FIELDS), json_values)
def test_a_valid_order_with_one_field_replaced_is_decided_cleanly(field: str, value: object) -> None:
    result = outcome(orjson.dumps({**SEED, field: value}))
    assert isinstance(result, Order | InvalidRecord)
