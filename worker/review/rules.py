"""The manual review rules, as pure functions: holding, deciding, escalating, listing.

A payout id stands for one payout: holding and deciding compare what arrives with what is known
under its id, so a repeat is a duplicate only when its content is the same, and a conflict otherwise.
Escalation relies on it: it announces a payout id once, and that id's pending review is never
replaced by another payout.

No Faust, no I/O, no clock: the pending review, the decision already taken (if any) and the time
come in as arguments, and what should happen comes out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from worker.payouts.records import Payout
from worker.payouts.rules import same_payout
from worker.review.records import PendingReview, ReviewDecision, ReviewedPayout, SellerPayout

#: How many of a seller's recent payouts a reviewer sees next to a held one.
HISTORY_LENGTH = 10


class Outcome(enum.Enum):
    """What a decision does to a held payout."""

    APPROVED = "approved"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # no such payout is waiting: nothing changes (HTTP 404)
    ALREADY_DECIDED = "already_decided"  # another decision came first: nothing changes (HTTP 409)
    REDELIVERED = "redelivered"  # this decision (verdict, reviewer, reason) was applied before
    CONFLICT = "conflict"  # a different decision for a payout decided already: conflicting_duplicate

    @property
    def applied(self) -> bool:
        """True when the payout moves on."""
        return self in {Outcome.APPROVED, Outcome.REJECTED}


@dataclass(frozen=True)
class Applied:
    """The outcome of a decision and, when it applies, the payout that flows on."""

    outcome: Outcome
    payout: ReviewedPayout | None = None


def new_review(
    payout: Payout, history: Sequence[SellerPayout], now: datetime, traceparent: str | None = None
) -> PendingReview:
    """The pending review for a payout arriving on `payouts-review`, with its seller's recent payouts
    and the trace it belongs to."""
    recent = [entry for entry in history if entry.payout_id != payout.payout_id]
    return PendingReview(payout=payout, held_at=now, history=recent, traceparent=traceparent)


class Hold(enum.Enum):
    """What a payout arriving for review does, given what is known under its id."""

    NEW = "new"  # it waits for a person
    DUPLICATE = "duplicate"  # the same payout is waiting or was decided: nothing changes
    CONFLICT = "conflict"  # another payout under the same id: refused as conflicting_duplicate


def hold_payout(
    pending: PendingReview | None, decided: ReviewedPayout | ReviewDecision | None, incoming: Payout
) -> Hold:
    """Whether `incoming` is a new payout to hold, a repeat of the one known under its id, or another.

    A repeat is never collapsed without comparing: a decision recorded without its payout (before
    decisions kept it) cannot be compared, so the payout is refused rather than dropped.
    """
    if pending is None and decided is None:
        return Hold.NEW
    known = pending.payout if pending is not None else decided
    return Hold.DUPLICATE if isinstance(known, Payout) and same_payout(known, incoming) else Hold.CONFLICT


def same_decision(a: ReviewDecision, b: ReviewDecision) -> bool:
    """The same decision: payout, verdict, reviewer and reason (a producer's retry may re-stamp the time)."""
    return (a.payout_id, a.decision, a.reviewer, a.reason) == (b.payout_id, b.decision, b.reviewer, b.reason)


def refusal(pending: PendingReview | None, decided: ReviewDecision | None) -> Outcome | None:
    """Why a new decision cannot apply (UNKNOWN or ALREADY_DECIDED), or None when it can."""
    if decided is not None:
        return Outcome.ALREADY_DECIDED
    return Outcome.UNKNOWN if pending is None else None


def apply_decision(
    pending: PendingReview | None, decided: ReviewedPayout | ReviewDecision | None, decision: ReviewDecision
) -> Applied:
    """What `decision` does, given the pending review and what was decided already (if anything).

    The same decision delivered again re-sends the payout it decided: the first delivery may have
    stopped after the decision was recorded and before the payout reached the broker (at least once;
    the payout id is the same, and the ledger settles it once).
    """
    if decided is not None:
        recorded = decided.review if isinstance(decided, ReviewedPayout) else decided
        if not same_decision(recorded, decision):
            return Applied(Outcome.CONFLICT)
        return Applied(Outcome.REDELIVERED, decided if isinstance(decided, ReviewedPayout) else None)
    if pending is None:
        return Applied(Outcome.UNKNOWN)
    outcome = Outcome.APPROVED if decision.decision == "approve" else Outcome.REJECTED
    reviewed = ReviewedPayout(
        **pending.payout.asdict(), review=decision, held_at=pending.held_at, escalated_at=pending.escalated_at
    )
    return Applied(outcome, reviewed)


def escalation_due(pending: PendingReview, now: datetime, sla: timedelta) -> bool:
    """True when the payout has waited longer than the SLA and has not been escalated yet."""
    return pending.escalated_at is None and now - pending.held_at >= sla


def escalated(pending: PendingReview, now: datetime) -> PendingReview:
    """The pending review, marked as escalated at `now`."""
    return pending.derive(escalated_at=now)


def oldest_first(pending: Iterable[PendingReview]) -> list[PendingReview]:
    """Pending reviews in the order a reviewer should handle them: longest waiting first."""
    return sorted(pending, key=lambda review: (review.held_at, review.payout.payout_id))


def waiting_summary(pending: Iterable[PendingReview], now: datetime) -> dict[str, float | int | None]:
    """How many payouts wait, and how long the oldest has waited (seconds), for `/stats`."""
    held = [review.held_at for review in pending]
    oldest = round((now - min(held)).total_seconds(), 1) if held else None
    return {"pending": len(held), "oldest_pending_age_s": oldest}


def with_payout(history: Sequence[SellerPayout], entry: SellerPayout) -> list[SellerPayout]:
    """A seller's history with `entry` added (or updated), newest first, at most HISTORY_LENGTH long."""
    others = [old for old in history if old.payout_id != entry.payout_id]
    newest = sorted([entry, *others], key=lambda item: item.created_at, reverse=True)
    return newest[:HISTORY_LENGTH]


def with_payouts(history: Sequence[SellerPayout], payouts: Iterable[Payout]) -> list[SellerPayout]:
    """A seller's history with newly approved `payouts` added."""
    updated = list(history)
    for payout in payouts:
        updated = with_payout(updated, history_entry(payout))
    return updated


def history_entry(payout: Payout) -> SellerPayout:
    """The line an approved payout adds to its seller's history."""
    return SellerPayout(
        payout_id=payout.payout_id, net=payout.net, currency=payout.currency, created_at=payout.created_at
    )


def history_by_currency(history: Iterable[SellerPayout]) -> dict[str, list[SellerPayout]]:
    """A seller's recent payouts per currency, newest first in each: amounts in different currencies
    are never compared or added."""
    groups: dict[str, list[SellerPayout]] = {}
    for entry in sorted(history, key=lambda item: item.created_at, reverse=True):
        groups.setdefault(entry.currency, []).append(entry)
    return groups


def compared_with_history(payout: Payout, history: Iterable[SellerPayout]) -> dict[str, Any] | None:
    """The held payout against the seller's recent payouts in its own currency: how many, the largest,
    and how many times the largest it is (one decimal). None when there are none in that currency."""
    same = history_by_currency(history).get(payout.currency, [])
    if not same:
        return None
    largest = max(entry.net for entry in same)
    ratio = (payout.net / largest).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return {"currency": payout.currency, "count": len(same), "largest": largest, "ratio": ratio}


def described(review: PendingReview) -> dict[str, Any]:
    """A pending review as the page shows it: the seller's history by currency, and the comparison."""
    return {
        **review.asdict(),
        "history_by_currency": history_by_currency(review.history),
        "comparison": compared_with_history(review.payout, review.history),
    }


#: Decisions the page's "decided" tab lists.
RECENT_DECISIONS = 100


def decision_line(reviewed: ReviewedPayout) -> dict[str, Any]:
    """What the "decided" tab shows of a decision (plain JSON)."""
    review = reviewed.review
    return {
        "payout_id": reviewed.payout_id,
        "order_id": reviewed.order_id,
        "seller_id": reviewed.seller_id,
        "net": str(reviewed.net),
        "currency": reviewed.currency,
        "decision": review.decision,
        "reviewer": review.reviewer,
        "reason": review.reason,
        "decided_at": review.decided_at.isoformat(),
    }


def latest_decisions(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest RECENT_DECISIONS decisions, newest first, each payout once."""
    newest = sorted(lines, key=lambda line: datetime.fromisoformat(line["decided_at"]), reverse=True)
    once: dict[str, dict[str, Any]] = {}
    for line in newest:
        once.setdefault(line["payout_id"], line)
    return list(once.values())[:RECENT_DECISIONS]


def with_decision(lines: Iterable[dict[str, Any]], line: dict[str, Any]) -> list[dict[str, Any]]:
    """A partition's latest decisions with `line` added."""
    return latest_decisions([line, *lines])
