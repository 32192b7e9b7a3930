"""The payouts feature's records: an order from another service, and the payout it becomes.

On the wire each is a plain JSON object (`worker.wire`): money is a `Decimal` written as a string
(`"1234.50"`), times are ISO-8601 UTC (`"2026-11-28T10:00:00Z"`), so that any Kafka client in any
language can produce and read them. The decoders are total: any bytes give a record or InvalidRecord.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import faust

from worker import wire as f
from worker.errors import InvalidRecord
from worker.reasons import Reason
from worker.wire import RECORD_OPTIONS, checked

#: How far in the future a producer's clock may run before its timestamp is refused.
CLOCK_SKEW = timedelta(minutes=5)


class Order(faust.Record, namespace="streamline.Order", **RECORD_OPTIONS):
    """A customer paid `amount` for something a seller sold. Input of the pipeline (`orders`)."""

    order_id: str
    seller_id: str
    customer_id: str
    amount: Decimal
    currency: str
    created_at: datetime


class Payout(faust.Record, namespace="streamline.Payout", **RECORD_OPTIONS):
    """What the marketplace owes a seller for one order, after its fee (`payouts` onwards).

    The optional fields say how it was computed and screened (a payout's journey: docs/journey.md);
    producers that predate them may leave them out.
    """

    payout_id: str
    order_id: str
    seller_id: str
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str
    created_at: datetime
    order_created_at: datetime
    customer_id: str | None = None
    #: Where the order was read: topic, partition and offset.
    order_topic: str | None = None
    order_partition: int | None = None
    order_offset: int | None = None
    #: The settings it was computed and screened with, as decimal strings: `fee_rate` and `fee_fixed`
    #: (orders-to-payouts), `review_threshold` (screening). For its journey only: passed on as written,
    #: never checked on the hot path (a Decimal field costs every stage a parse and a format).
    applied: dict[str, str] | None = None


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
    return payout_from(f.json_object(raw))


def payout_from(fields: Mapping[str, Any]) -> Payout:
    return checked(Payout, **payout_fields(fields))


def payout_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
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
        "customer_id": f.optional_text(fields, "customer_id"),
        "order_topic": f.optional_text(fields, "order_topic"),
        "order_partition": f.count(fields, "order_partition"),
        "order_offset": f.count(fields, "order_offset"),
        "applied": f.optional_object(fields, "applied"),
    }


def _currency(fields: Mapping[str, Any], currencies: Collection[str]) -> str:
    code = f.text(fields, "currency")
    if code not in currencies:
        raise InvalidRecord(
            Reason.UNKNOWN_CURRENCY, f"currency {code!r:.60} is not one of {', '.join(sorted(currencies))}"
        )
    return code
