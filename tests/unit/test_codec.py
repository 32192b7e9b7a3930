"""The wire format: plain JSON in and out, exact Decimals, a clear reason for every bad message."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from worker.errors import InvalidRecord
from worker.payouts.records import Order, decode_order, decode_payout
from worker.payouts.rules import FeeSchedule, payout_for
from worker.wire import encode

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CURRENCIES = frozenset({"EUR", "USD", "GBP"})
SEED = {
    "order_id": "o-1",
    "seller_id": "s-9",
    "customer_id": "c-3",
    "amount": "120.00",
    "currency": "EUR",
    "created_at": "2026-11-28T10:00:00Z",
}


def decode(fields: object) -> Order:
    raw = fields if isinstance(fields, bytes) else orjson.dumps(fields)
    return decode_order(raw, currencies=CURRENCIES, now=NOW)


def test_an_order_from_another_language_is_understood() -> None:
    order = decode(SEED)
    assert order.amount == Decimal("120.00") and isinstance(order.amount, Decimal)
    assert order.created_at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert (order.order_id, order.seller_id, order.customer_id, order.currency) == (
        "o-1",
        "s-9",
        "c-3",
        "EUR",
    )


def test_encoding_is_plain_json_with_string_money_and_utc_times() -> None:
    wire = orjson.loads(encode(decode(SEED)))
    assert wire == SEED


def test_a_payout_round_trips_with_exact_decimals() -> None:
    payout = payout_for(decode({**SEED, "amount": "0.10"}), FeeSchedule(Decimal("0"), Decimal("0")), now=NOW)
    again = decode_payout(encode(payout))
    assert again == payout
    assert again.net == Decimal("0.10") and str(again.net) == "0.10"


def test_unknown_fields_are_ignored() -> None:
    assert decode({**SEED, "coupon": "XMAS", "lines": [1, 2]}).order_id == "o-1"


def test_other_offsets_are_normalised_to_utc() -> None:
    order = decode({**SEED, "created_at": "2026-11-28T12:00:00+02:00"})
    assert order.created_at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


#: Every kind of bad order, with the reason the codec gives (the topic contracts check them too).
BAD_ORDERS: list[tuple[object, str]] = [
    (None, "null_value"),
    (b"", "empty_value"),
    (b"   ", "empty_value"),
    (b"\xff\xfe{}", "invalid_utf8"),
    (b"not json", "invalid_json"),
    (b'{"order_id": "o-1", ', "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"o-1"', "not_an_object"),
    ({**SEED, "order_id": None}, "missing_field"),
    ({k: v for k, v in SEED.items() if k != "seller_id"}, "missing_field"),
    ({**SEED, "customer_id": ""}, "missing_field"),
    ({**SEED, "seller_id": 9}, "wrong_type"),
    ({**SEED, "amount": 120.0}, "wrong_type"),
    ({**SEED, "amount": "lots"}, "invalid_amount"),
    ({**SEED, "amount": "NaN"}, "invalid_amount"),
    ({**SEED, "amount": "Infinity"}, "invalid_amount"),
    ({**SEED, "amount": "-1.00"}, "non_positive_amount"),
    ({**SEED, "amount": "0"}, "non_positive_amount"),
    ({**SEED, "amount": "1.005"}, "too_many_decimals"),
    ({**SEED, "amount": "1e300"}, "invalid_amount"),
    ({**SEED, "amount": "1000000000.01"}, "amount_too_large"),
    # Decimal() reads these; other services read them differently, or not at all.
    ({**SEED, "amount": "1_000.00"}, "invalid_amount"),
    ({**SEED, "amount": "+12.50"}, "invalid_amount"),
    ({**SEED, "amount": " 12.50"}, "invalid_amount"),
    ({**SEED, "amount": "12.50 "}, "invalid_amount"),
    ({**SEED, "amount": "12.50\n"}, "invalid_amount"),
    ({**SEED, "amount": "1.2e1"}, "invalid_amount"),
    ({**SEED, "amount": "\u0661\u0662.50"}, "invalid_amount"),  # Arabic-Indic digits
    ({**SEED, "amount": "\uff11\uff12.50"}, "invalid_amount"),  # full-width digits
    ({**SEED, "amount": "12."}, "invalid_amount"),
    ({**SEED, "amount": ".50"}, "invalid_amount"),
    ({**SEED, "amount": "0x10"}, "invalid_amount"),
    ({**SEED, "amount": "-0.00"}, "non_positive_amount"),
    ({**SEED, "currency": "JPY"}, "unknown_currency"),
    ({**SEED, "currency": "eur"}, "unknown_currency"),
    ({**SEED, "created_at": "yesterday"}, "invalid_timestamp"),
    ({**SEED, "created_at": "2026-11-28T10:00:00"}, "invalid_timestamp"),
    ({**SEED, "created_at": "2026-11-29T10:00:00Z"}, "future_timestamp"),
    # Valid ISO-8601 that UTC cannot hold: this crashed the worker (OverflowError).
    ({**SEED, "created_at": "0001-01-01T00:00:00+01:00"}, "invalid_timestamp"),
    ({**SEED, "created_at": "9999-12-31T23:59:59-01:00"}, "invalid_timestamp"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_ORDERS)
def test_each_kind_of_bad_order_has_its_own_reason(raw: object, reason: str) -> None:
    with pytest.raises(InvalidRecord) as bad:
        decode_order(
            raw if raw is None or isinstance(raw, bytes) else orjson.dumps(raw),
            currencies=CURRENCIES,
            now=NOW,
        )
    assert bad.value.reason == reason
    assert bad.value.detail


@pytest.mark.parametrize(("amount", "exact"), [("12", "12.00"), ("12.5", "12.50"), ("0012.50", "12.50")])
def test_plain_ascii_amounts_with_up_to_two_decimals_are_accepted(amount: str, exact: str) -> None:
    assert str(decode({**SEED, "amount": amount}).amount) == exact


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00-01:00", "2026-11-28T10:00:00+23:59"]
)
def test_the_edges_of_the_utc_range_are_times_like_any_other(moment: str) -> None:
    assert decode({**SEED, "created_at": moment}).created_at.tzinfo is UTC


def test_encode_accepts_records_dicts_lists_str_and_bytes_and_nothing_else() -> None:
    assert encode(b"\x00raw") == b"\x00raw"
    assert encode("héllo") == "héllo".encode()
    assert orjson.loads(encode({"amount": Decimal("1.50"), "at": NOW})) == {
        "amount": "1.50",
        "at": "2026-11-28T12:00:00Z",
    }
    assert orjson.loads(encode([Decimal("2.00"), "s-1"])) == ["2.00", "s-1"]
    with pytest.raises(TypeError, match="Record, dict, list, str or bytes"):
        encode(12)  # type: ignore[arg-type]
