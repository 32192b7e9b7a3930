"""`checked`: records built from values the codec or a rule already checked are the same records."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from worker.payouts.records import Payout
from worker.wire import checked, encode

FIELDS = {
    "payout_id": "po-1",
    "order_id": "o-1",
    "seller_id": "s-1",
    "gross": Decimal("120.00"),
    "fee": Decimal("3.78"),
    "net": Decimal("116.22"),
    "currency": "EUR",
    "created_at": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    "order_created_at": datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
}


def test_a_checked_record_equals_the_validated_one() -> None:
    fast, slow = checked(Payout, **FIELDS), Payout(**FIELDS)
    assert fast == slow
    assert fast.asdict() == slow.asdict()
    assert encode(fast) == encode(slow)
    assert fast.net == Decimal("116.22")


@pytest.mark.parametrize("change", [{"net": None}, {"extra": 1}])
def test_a_checked_record_needs_exactly_its_fields(change: dict[str, object]) -> None:
    fields = {k: v for k, v in {**FIELDS, **change}.items() if v is not None}
    with pytest.raises(TypeError, match="Payout needs exactly"):
        checked(Payout, **fields)
