"""The business rules: fees, payout ids, screening. Pure functions, exact Decimals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import RejectedByRule
from worker.payouts.records import Order
from worker.payouts.rules import (
    PAYOUT_NAMESPACE,
    FeeSchedule,
    Route,
    fee_for,
    is_payout_id,
    payout_for,
    payout_id_for,
    same_payout,
    screen,
)

SCHEDULE = FeeSchedule(rate=Decimal("0.029"), fixed=Decimal("0.30"))
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def an_order(amount: str, order_id: str = "o-1") -> Order:
    return Order(
        order_id=order_id,
        seller_id="s-1",
        customer_id="c-1",
        amount=Decimal(amount),
        currency="EUR",
        created_at=datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        ("120.00", "3.78"),  # 3.48 + 0.30
        ("100.00", "3.20"),
        ("0.50", "0.31"),  # 0.0145 + 0.30 = 0.3145
        # Half-even: 0.029 x 50.00 + 0.30 = 1.75 exactly; x 0.50 = 0.3145 rounds down, and:
        ("25.00", "1.02"),  # 0.725 + 0.30 = 1.025 -> 1.02 (half to even)
        ("75.00", "2.48"),  # 2.175 + 0.30 = 2.475 -> 2.48 (half to even)
    ],
)
def test_fee_is_rate_times_amount_plus_fixed_rounded_half_even(amount: str, fee: str) -> None:
    assert fee_for(Decimal(amount), SCHEDULE) == Decimal(fee)


def test_payout_net_is_amount_minus_fee_exactly() -> None:
    payout = payout_for(an_order("120.00"), SCHEDULE, now=NOW)
    assert (payout.gross, payout.fee, payout.net) == (
        Decimal("120.00"),
        Decimal("3.78"),
        Decimal("116.22"),
    )
    assert payout.gross == payout.fee + payout.net
    assert payout.order_created_at == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_payout_id_is_derived_from_the_seller_and_the_order_id() -> None:
    assert payout_id_for("s-1", "o-1") == payout_id_for("s-1", "o-1")
    assert payout_id_for("s-1", "o-1") != payout_id_for("s-1", "o-2")
    # One customer order with items of two sellers: each seller gets its own payout.
    assert payout_id_for("s-1", "o-1") != payout_id_for("s-2", "o-1")
    assert payout_for(an_order("5.00"), SCHEDULE, now=NOW).payout_id == payout_id_for("s-1", "o-1")
    # Stable across releases: ids already paid out must never change meaning.
    assert payout_id_for("s-1", "o-1") == "po-f9524770-1601-55ca-bc23-3be3256f6519"
    assert payout_id_for("s-9", "o-1") == "po-c7c6bb58-f184-555b-84c6-f7f34a7ddd67"  # README, wire format
    assert is_payout_id(payout_id_for("s-1", "o-1")) and not is_payout_id("po-1")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("s-1", "2o"), ("s-12", "o")),
        (("", "s-1o"), ("s-1", "o")),
        (("s:1", "o"), ("s", ":1o")),
        (("é", ""), ("", "é")),
    ],
)
def test_no_two_sellers_and_orders_share_a_payout_id(one: tuple[str, str], other: tuple[str, str]) -> None:
    assert payout_id_for(*one) != payout_id_for(*other)


def test_an_order_whose_fee_eats_the_amount_is_refused() -> None:
    with pytest.raises(RejectedByRule) as refused:
        payout_for(an_order("0.30"), SCHEDULE, now=NOW)
    assert refused.value.reason == "fee_exceeds_amount"


@pytest.mark.parametrize(
    ("net", "route"),
    [("999.99", Route.APPROVED), ("1000.00", Route.APPROVED), ("1000.01", Route.REVIEW)],
)
def test_screening_holds_payouts_above_the_threshold(net: str, route: Route) -> None:
    payout = payout_for(an_order("2000.00"), SCHEDULE, now=NOW)
    payout.net = Decimal(net)
    assert screen(payout, Decimal("1000.00")) is route


@given(st.text(), st.text())
def test_payout_id_is_the_uuid5_of_the_seller_and_order_ids(seller_id: str, order_id: str) -> None:
    name = f"{len(seller_id.encode())}:{seller_id}{order_id}"
    assert payout_id_for(seller_id, order_id) == f"po-{uuid.uuid5(PAYOUT_NAMESPACE, name)}"


def test_the_same_payout_computed_again_later_is_the_same_payout() -> None:
    first = payout_for(an_order("120.00"), SCHEDULE, now=NOW)
    again = payout_for(an_order("120.00"), SCHEDULE, now=NOW.replace(hour=13))
    assert same_payout(first, again)
    assert not same_payout(first, payout_for(an_order("120.01"), SCHEDULE, now=NOW))
    assert not same_payout(first, first.derive(seller_id="s-2"))
    assert not same_payout(first, first.derive(fee=first.fee + 1, net=first.net - 1))
