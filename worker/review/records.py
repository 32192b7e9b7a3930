"""The review feature's records: a held payout waiting for a person, the decision, and what follows.

Plain JSON on the wire and in the tables (`worker.wire`); the decoders are total.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

import faust

from worker import wire as f
from worker.errors import InvalidRecord
from worker.payouts.records import Payout, payout_fields, payout_from
from worker.reasons import Reason
from worker.wire import RECORD_OPTIONS, checked

R = TypeVar("R", bound=faust.Record)

#: What a reviewer can decide.
DECISIONS = ("approve", "reject")
#: Longest reviewer name or reason kept in the audit record.
MAX_REVIEW_TEXT = 2000
#: What a reviewer's request body may hold.
REQUEST_FIELDS = ("reviewer", "reason")


class ReviewDecision(faust.Record, namespace="streamline.ReviewDecision", **RECORD_OPTIONS):
    """A person's verdict on a held payout (`review-decisions`), kept with the payout for audit."""

    payout_id: str
    decision: str  # "approve" | "reject"
    reviewer: str
    reason: str
    decided_at: datetime


class ReviewedPayout(Payout, namespace="streamline.ReviewedPayout", **RECORD_OPTIONS):
    """A held payout after its review (`payouts-approved` / `payouts-rejected`), carrying the decision."""

    review: ReviewDecision
    #: When it was held, and escalated past the review SLA (if it was); absent in records written before.
    held_at: datetime | None = None
    escalated_at: datetime | None = None


class SellerPayout(faust.Record, namespace="streamline.SellerPayout", **RECORD_OPTIONS):
    """One of a seller's recent approved payouts, shown to the reviewer next to a held payout."""

    payout_id: str
    net: Decimal
    currency: str
    created_at: datetime


class SellerHistory(faust.Record, namespace="streamline.SellerHistory", **RECORD_OPTIONS):
    """A seller's recent approved payouts, newest first (the `seller-history` table)."""

    payouts: list[SellerPayout]


class PendingReview(faust.Record, namespace="streamline.PendingReview", **RECORD_OPTIONS):
    """A payout waiting for a person (the `pending-reviews` table), with the seller's recent payouts."""

    payout: Payout
    held_at: datetime
    history: list[SellerPayout]
    escalated_at: datetime | None = None
    #: The `traceparent` of the hop that held it: its escalation and its decision continue that trace.
    traceparent: str | None = None


class ReviewEscalation(faust.Record, namespace="streamline.ReviewEscalation", **RECORD_OPTIONS):
    """A payout pending longer than the review SLA (`payouts-review-escalated`), announced once."""

    payout: Payout
    held_at: datetime
    escalated_at: datetime
    sla_seconds: float


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
        raise InvalidRecord(Reason.REVIEWER_MISMATCH, f"this token is {reviewer}'s: leave reviewer out")
    return _decision({"reason": fields.get("reason"), "reviewer": reviewer}, payout_id, decision, now)


def decode_state(raw: bytes | None, model: type[R]) -> R:
    """A record this worker wrote to one of its own tables or internal topics, or InvalidRecord."""
    decoder = _STATES.get(model)
    if decoder is None:
        raise TypeError(f"no state decoder for {model.__name__}")
    try:
        return cast(R, decoder(f.json_object(raw, limit=None)))
    except InvalidRecord as error:
        raise InvalidRecord(Reason.INVALID_STATE, f"not a {model.__name__}: {error}") from None


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
        payout=payout_from(f.as_object(f.field(fields, "payout"), "payout")),
        held_at=f.moment(fields, "held_at"),
        history=_history_entries(fields),
        escalated_at=f.optional_moment(fields, "escalated_at"),
        traceparent=f.optional_text(fields, "traceparent"),
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
    return checked(
        ReviewedPayout,
        **payout_fields(fields),
        review=review,
        held_at=f.optional_moment(fields, "held_at"),
        escalated_at=f.optional_moment(fields, "escalated_at"),
    )


_STATES: dict[type[faust.Record], Callable[[Mapping[str, Any]], faust.Record]] = {
    Payout: payout_from,
    PendingReview: _pending,
    ReviewDecision: _decision,
    ReviewedPayout: _reviewed,
    SellerHistory: _history,
}


def _only(fields: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(name for name in fields if name not in allowed)
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise InvalidRecord(Reason.UNKNOWN_FIELD, f"only {', '.join(allowed)} may be sent, not {names:.100}")


def _verdict(fields: Mapping[str, Any]) -> str:
    decision = f.text(fields, "decision")
    if decision not in DECISIONS:
        raise InvalidRecord(
            Reason.UNKNOWN_DECISION, f"decision must be approve or reject, got {decision!r:.60}"
        )
    return decision


def _review_text(fields: Mapping[str, Any], name: str) -> str:
    text = f.text(fields, name).strip()
    if len(text) > MAX_REVIEW_TEXT:
        raise InvalidRecord(Reason.TEXT_TOO_LONG, f"{name} is longer than {MAX_REVIEW_TEXT} characters")
    return text
