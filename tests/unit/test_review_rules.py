"""The manual review rules (pure), the decision codec and the review settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from worker.errors import ConfigError, InvalidRecord
from worker.payouts.records import Payout
from worker.review.records import (
    PendingReview,
    ReviewDecision,
    ReviewedPayout,
    SellerPayout,
    decode_decision,
    decode_decision_request,
    decode_state,
)
from worker.review.rules import (
    HISTORY_LENGTH,
    RECENT_DECISIONS,
    Applied,
    Hold,
    Outcome,
    apply_decision,
    compared_with_history,
    described,
    escalated,
    escalation_due,
    history_by_currency,
    history_entry,
    hold_payout,
    latest_decisions,
    new_review,
    oldest_first,
    refusal,
    waiting_summary,
    with_payout,
    with_payouts,
)
from worker.settings import load_settings, parse_duration
from worker.wire import encode

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SLA = timedelta(hours=24)


def payout(payout_id: str = "po-1", net: str = "1500.00", created_at: datetime = NOW) -> Payout:
    return Payout(
        payout_id=payout_id,
        order_id=f"o-{payout_id}",
        seller_id="s-1",
        gross=Decimal(net) + Decimal("10.00"),
        fee=Decimal("10.00"),
        net=Decimal(net),
        currency="EUR",
        created_at=created_at,
        order_created_at=created_at,
    )


def decision(verdict: str = "approve", reviewer: str = "alice", at: datetime = NOW) -> ReviewDecision:
    return ReviewDecision(
        payout_id="po-1", decision=verdict, reviewer=reviewer, reason="checked", decided_at=at
    )


def pending(held_at: datetime = NOW, payout_id: str = "po-1") -> PendingReview:
    return new_review(payout(payout_id), [], held_at)


@pytest.mark.parametrize(
    ("verdict", "outcome"), [("approve", Outcome.APPROVED), ("reject", Outcome.REJECTED)]
)
def test_a_decision_on_a_pending_payout_lets_it_flow_on_carrying_the_decision(verdict, outcome) -> None:
    applied = apply_decision(pending(), None, decision(verdict))
    assert applied.outcome is outcome and outcome.applied
    assert isinstance(applied.payout, ReviewedPayout)
    assert applied.payout.review == decision(verdict)
    assert (applied.payout.payout_id, applied.payout.net) == ("po-1", Decimal("1500.00"))


def test_a_decision_for_an_unknown_payout_changes_nothing() -> None:
    assert apply_decision(None, None, decision()).outcome is Outcome.UNKNOWN
    assert apply_decision(None, None, decision()).payout is None
    assert refusal(None, None) is Outcome.UNKNOWN


@pytest.mark.parametrize(
    "second",
    [decision("reject", "alice"), decision("approve", "bob"), decision().derive(reason="other reason")],
)
def test_a_different_second_decision_changes_nothing_and_is_a_conflict(second: ReviewDecision) -> None:
    first = decision("approve", "alice")
    applied = apply_decision(None, first, second)
    assert (applied.outcome, applied.payout) == (Outcome.CONFLICT, None)
    assert refusal(pending(), first) is Outcome.ALREADY_DECIDED  # what the API answers (409)


def test_the_same_decision_delivered_again_sends_the_same_payout_again() -> None:
    # The first delivery may have recorded the decision and stopped before its payout reached the
    # broker: sending the same payout (same id) again loses nothing, and the ledger settles it once.
    first = apply_decision(pending(), None, decision()).payout
    assert first is not None
    again = ReviewDecision.from_data(orjson.loads(encode(decision())))  # as redelivered from the topic
    applied = apply_decision(None, first, again)
    assert (applied.outcome, applied.payout) == (Outcome.REDELIVERED, first)
    assert not Outcome.REDELIVERED.applied  # nothing is recorded again
    restamped = decision(at=NOW + timedelta(seconds=5))  # a producer's retry
    assert apply_decision(None, first, restamped).outcome is Outcome.REDELIVERED
    # An entry from before decided-reviews kept the payout: nothing to send again.
    assert apply_decision(None, decision(), again) == Applied(Outcome.REDELIVERED, None)


def test_a_pending_payout_can_be_decided() -> None:
    assert refusal(pending(), None) is None


def test_a_payout_is_held_once_and_a_repeat_is_compared_with_what_is_known() -> None:
    held = pending()
    decided = ReviewedPayout(**payout().asdict(), review=decision())
    again = payout().derive(created_at=NOW + timedelta(hours=1))  # a redelivered order, computed again
    assert hold_payout(None, None, payout()) is Hold.NEW
    assert hold_payout(held, None, again) is Hold.DUPLICATE
    assert hold_payout(None, decided, again) is Hold.DUPLICATE
    other = payout(net="1600.00")  # the same id, another amount: a reused order id
    assert hold_payout(held, None, other) is Hold.CONFLICT
    assert hold_payout(None, decided, other) is Hold.CONFLICT
    assert hold_payout(held, None, payout().derive(seller_id="s-2")) is Hold.CONFLICT


def test_a_repeat_of_a_payout_decided_before_decisions_kept_it_is_refused_not_dropped() -> None:
    assert hold_payout(None, decision(), payout()) is Hold.CONFLICT


def test_an_escalated_review_is_never_replaced_so_it_is_announced_once() -> None:
    announced = escalated(pending(held_at=NOW), NOW + SLA)
    assert hold_payout(announced, None, payout()) is Hold.DUPLICATE  # kept as it is: still escalated
    assert hold_payout(announced, None, payout(net="9999.00")) is Hold.CONFLICT  # refused, not announced


def test_the_held_payout_is_not_part_of_its_own_history() -> None:
    history = [history_entry(payout("po-1")), history_entry(payout("po-0", "20.00"))]
    review = new_review(payout("po-1"), history, NOW)
    assert [entry.payout_id for entry in review.history] == ["po-0"]
    assert review.held_at == NOW and review.escalated_at is None


def test_escalation_is_due_once_after_the_sla() -> None:
    review = pending(held_at=NOW)
    assert not escalation_due(review, NOW + SLA - timedelta(seconds=1), SLA)
    assert escalation_due(review, NOW + SLA, SLA)
    marked = escalated(review, NOW + SLA)
    assert marked.escalated_at == NOW + SLA
    assert not escalation_due(marked, NOW + 10 * SLA, SLA)


def test_reviews_are_listed_longest_waiting_first_and_summarised() -> None:
    reviews = [pending(NOW, "po-b"), pending(NOW - timedelta(hours=2), "po-c"), pending(NOW, "po-a")]
    assert [r.payout.payout_id for r in oldest_first(reviews)] == ["po-c", "po-a", "po-b"]
    assert waiting_summary(reviews, NOW) == {"pending": 3, "oldest_pending_age_s": 7200.0}
    assert waiting_summary([], NOW) == {"pending": 0, "oldest_pending_age_s": None}


def test_a_seller_history_keeps_the_newest_payouts_once_each() -> None:
    history: list = []
    for n in range(HISTORY_LENGTH + 5):
        history = with_payout(
            history, history_entry(payout(f"po-{n}", created_at=NOW + timedelta(minutes=n)))
        )
    history = with_payout(history, history_entry(payout("po-14", created_at=NOW + timedelta(minutes=14))))
    ids = [entry.payout_id for entry in history]
    assert len(ids) == HISTORY_LENGTH and ids[0] == "po-14" and ids[-1] == "po-5"
    assert len(set(ids)) == len(ids)
    batch = [payout(f"po-{n}", created_at=NOW + timedelta(minutes=n)) for n in range(HISTORY_LENGTH + 5)]
    assert with_payouts([], batch) == history


def test_decisions_round_trip_and_bad_ones_have_reasons() -> None:
    assert decode_decision(encode(decision())) == decision()
    bad = {**orjson.loads(encode(decision())), "decision": "maybe"}
    with pytest.raises(InvalidRecord) as caught:
        decode_decision(orjson.dumps(bad))
    assert caught.value.reason == "unknown_decision"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty_value"),
        (b"{reviewer", "invalid_json"),
        (b"[]", "not_an_object"),
        (b'{"reviewer": "alice"}', "missing_field"),
        (b'{"reviewer": "alice", "reason": "  "}', "missing_field"),
        (b'{"reviewer": "alice", "reason": 7}', "wrong_type"),
        (b'{"reviewer": "bob", "reason": "ok"}', "reviewer_mismatch"),
        (orjson.dumps({"reviewer": "alice", "reason": "x" * 5000}), "text_too_long"),
    ],
)
def test_a_bad_decision_request_says_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        decode_decision_request(body, payout_id="po-1", decision="approve", reviewer="alice", now=NOW)
    assert caught.value.reason == reason


def test_a_decision_request_takes_its_payout_verdict_and_time_from_the_route_and_the_clock() -> None:
    made = decode_decision_request(
        b'{"reason": "ok"}', payout_id="po-1", decision="approve", reviewer="alice", now=NOW
    )
    assert (made.payout_id, made.decision, made.reviewer, made.decided_at) == (
        "po-1",
        "approve",
        "alice",
        NOW,
    )


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "body",
    [
        b'{"reviewer": "alice", "reason": "ok", "payout_id": "po-other", "decision": "reject"}',
        b'{"reviewer": "alice", "reason": "ok", "x": ' + nested(254) + b"}",  # a 500 when re-encoded
        b'{"reviewer": "alice", "reason": "ok", "x": ' + nested(2000) + b"}",
    ],
)
def test_a_decision_request_with_anything_else_in_it_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRecord) as caught:
        decode_decision_request(body, payout_id="po-1", decision="approve", reviewer="alice", now=NOW)
    assert caught.value.reason in {"unknown_field", "invalid_json"}


def test_a_reason_nested_deep_is_the_wrong_type() -> None:
    body = b'{"reviewer": "alice", "reason": ' + nested(254) + b"}"
    with pytest.raises(InvalidRecord) as caught:
        decode_decision_request(body, payout_id="po-1", decision="approve", reviewer="alice", now=NOW)
    assert caught.value.reason == "wrong_type"


def test_table_state_round_trips_and_garbage_is_an_invalid_record() -> None:
    review = new_review(payout(), [history_entry(payout("po-0", "20.00"))], NOW)
    assert decode_state(encode(review), PendingReview) == review
    with pytest.raises(InvalidRecord):
        decode_state(b'{"held_at": "yesterday"}', PendingReview)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("90m", 5400), ("30s", 30), ("2d", 172800), ("3600", 3600), ("1.5", 1.5)],
)
def test_durations_read_like_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_review_settings_default_and_fail_naming_the_variable(monkeypatch) -> None:
    settings = load_settings()
    assert settings.review_sla == timedelta(hours=24)
    assert settings.review_api_token.get_secret_value() == ""
    monkeypatch.setenv("REVIEW_SLA", "soon")
    with pytest.raises(ConfigError, match="REVIEW_SLA"):
        load_settings()
    monkeypatch.setenv("REVIEW_SLA", "0s")
    with pytest.raises(ConfigError, match="REVIEW_SLA"):
        load_settings()


def test_the_review_token_is_never_shown(monkeypatch) -> None:
    monkeypatch.setenv("REVIEW_API_TOKEN", "tok-very-secret")
    settings = load_settings()
    assert settings.review_api_token.get_secret_value() == "tok-very-secret"
    assert "tok-very-secret" not in repr(settings) and "tok-very-secret" not in str(settings)


def seller_payout(payout_id: str, net: str, currency: str, minutes: int) -> SellerPayout:
    return SellerPayout(
        payout_id=payout_id, net=Decimal(net), currency=currency, created_at=NOW - timedelta(minutes=minutes)
    )


def test_the_sellers_history_is_grouped_by_currency_newest_first() -> None:
    history = [
        seller_payout("a", "3.00", "EUR", 3),
        seller_payout("b", "5.00", "GBP", 1),
        seller_payout("c", "4.00", "EUR", 2),
    ]
    groups = history_by_currency(history)
    assert {currency: [p.payout_id for p in payouts] for currency, payouts in groups.items()} == {
        "GBP": ["b"],
        "EUR": ["c", "a"],
    }


def test_a_held_payout_is_compared_with_its_own_currency_only() -> None:
    # The page said "596.3x the largest" of a GBP payout against EUR amounts.
    gbp = payout(net="1789.00").derive(currency="GBP")
    history = [
        seller_payout("a", "3.00", "EUR", 3),
        seller_payout("b", "600.00", "GBP", 1),
        seller_payout("c", "1000.00", "EUR", 2),
    ]
    assert compared_with_history(gbp, history) == {
        "currency": "GBP",
        "count": 1,
        "largest": Decimal("600.00"),
        "ratio": Decimal("3.0"),
    }
    assert compared_with_history(gbp, [seller_payout("a", "3.00", "EUR", 3)]) is None
    shown = described(new_review(gbp, history, NOW))
    assert sorted(shown["history_by_currency"]) == ["EUR", "GBP"] and shown["comparison"]["ratio"] == Decimal(
        "3.0"
    )


def test_the_latest_decisions_are_newest_first_once_each_and_at_most_a_hundred() -> None:
    lines = [
        {"payout_id": f"po-{n % 120}", "decided_at": (NOW + timedelta(seconds=n)).isoformat()}
        for n in range(150)
    ]
    latest = latest_decisions(lines)
    assert len(latest) == RECENT_DECISIONS
    assert [line["payout_id"] for line in latest[:2]] == ["po-29", "po-28"]
    assert len({line["payout_id"] for line in latest}) == RECENT_DECISIONS
