"""The wire contracts: every record the pipeline reads or writes.

On the wire each record is a plain JSON object (see `worker.codec`): money is a `Decimal` written as a
string (`"1234.50"`), times are ISO-8601 UTC (`"2026-11-28T10:00:00Z"`), and no Faust metadata is
added, so that any Kafka client in any language can produce and read these topics.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import faust
from faust.models.fields import StringField

R = TypeVar("R", bound=faust.Record)

_OPTIONS = {"include_metadata": False, "validation": True, "isodates": True, "decimals": True}


class Order(faust.Record, namespace="streamline.Order", **_OPTIONS):
    """A customer paid `amount` for something a seller sold. Input of the pipeline (`orders`)."""

    order_id: str
    seller_id: str
    customer_id: str
    amount: Decimal
    currency: str
    created_at: datetime


class Payout(faust.Record, namespace="streamline.Payout", **_OPTIONS):
    """What the marketplace owes a seller for one order, after its fee (`payouts` onwards)."""

    payout_id: str
    order_id: str
    seller_id: str
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str
    created_at: datetime
    order_created_at: datetime


class DeadLetter(faust.Record, namespace="streamline.DeadLetter", **_OPTIONS):
    """A message the pipeline could not process, kept byte for byte with where it came from."""

    source_topic: str
    source_partition: int | None
    source_offset: int | None
    reason: str
    detail: str
    # `""` for an empty payload, None for a null one: Faust refuses blank strings unless told.
    payload_base64: str | None = StringField(allow_blank=True, required=True)
    key_base64: str | None = StringField(allow_blank=True, required=True)
    failed_at: datetime
    payload_size: int | None = None
    payload_truncated: bool = False


class Settlement(faust.Record, namespace="streamline.Settlement", **_OPTIONS):
    """A payout's final state in the settlement ledger: written once, whatever is redelivered."""

    payout_id: str
    seller_id: str
    state: str  # "approved" or "rejected"
    net: Decimal
    currency: str
    settled_at: datetime
    ledger_partition: int  # the partition that owns this entry, so totals count only what a worker owns


class ReviewDecision(faust.Record, namespace="streamline.ReviewDecision", **_OPTIONS):
    """A person's verdict on a held payout (`review-decisions`), kept with the payout for audit."""

    payout_id: str
    decision: str  # "approve" | "reject"
    reviewer: str
    reason: str
    decided_at: datetime


class ReviewedPayout(Payout, namespace="streamline.ReviewedPayout", **_OPTIONS):
    """A held payout after its review (`payouts-approved` / `payouts-rejected`), carrying the decision."""

    review: ReviewDecision


class SellerPayout(faust.Record, namespace="streamline.SellerPayout", **_OPTIONS):
    """One of a seller's recent approved payouts, shown to the reviewer next to a held payout."""

    payout_id: str
    net: Decimal
    currency: str
    created_at: datetime


class SellerHistory(faust.Record, namespace="streamline.SellerHistory", **_OPTIONS):
    """A seller's recent approved payouts, newest first (the `seller-history` table)."""

    payouts: list[SellerPayout]


class PendingReview(faust.Record, namespace="streamline.PendingReview", **_OPTIONS):
    """A payout waiting for a person (the `pending-reviews` table), with the seller's recent payouts."""

    payout: Payout
    held_at: datetime
    history: list[SellerPayout]
    escalated_at: datetime | None = None


class ReviewEscalation(faust.Record, namespace="streamline.ReviewEscalation", **_OPTIONS):
    """A payout pending longer than the review SLA (`payouts-review-escalated`), announced once."""

    payout: Payout
    held_at: datetime
    escalated_at: datetime
    sla_seconds: float


#: The largest payload a dead letter carries whole; beyond it the payload is cut and its size noted.
MAX_DEAD_PAYLOAD = 512 * 1024


def checked(cls: type[R], **fields: Any) -> R:
    """A record of `cls` from values already checked by `worker.codec` or computed by a rule.

    Faust's constructor validates and prepares every field again (~28 µs a record, most of a stage's
    work on the hot path); this one only checks that exactly the record's fields are given.
    """
    if fields.keys() != cls._options.fields.keys():
        raise TypeError(f"{cls.__name__} needs exactly {sorted(cls._options.fields)}, got {sorted(fields)}")
    record = cls.__new__(cls)
    record.__dict__.update(fields, __evaluated_fields__=set())
    return record
