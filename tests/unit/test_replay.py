"""What `replay` sends back, refuses and skips, and how it reports it (no broker: `judge` is pure)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from worker.errors import InvalidRecord
from worker.runtime import context
from worker.runtime.deadletters import Origin, dead_letter_for
from worker.runtime.replay import Destinations, Report, judge
from worker.settings import Settings
from worker.wire import encode

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
INPUTS = ("orders", "payouts", "payouts-review", "review-decisions")
OUTCOMES = ("payouts-approved", "payouts-rejected", "payouts-review-escalated", "dead-letters")
HERE = Destinations(frozenset(INPUTS), frozenset(OUTCOMES), "streamline-")
FORGED_PAYOUT = orjson.dumps({"payout_id": "po-x", "seller_id": "s-1", "net": "99999.00", "currency": "EUR"})


def letter(
    topic: str = "orders", reason: str = "unknown_currency", value: bytes | None = b'{"o": 1}', **cut: Any
) -> bytes:
    error = InvalidRecord(reason, "details")
    made = dead_letter_for(Origin(topic, 1, 17), error, key=b"s-1", value=value, now=NOW, **cut)
    return encode(made)


def test_a_dead_letter_goes_back_to_its_input_topic_byte_for_byte() -> None:
    verdict = judge(letter(value=b'{"order_id": "o-\xc3\xa9"}'), None, HERE)
    assert verdict.action == "replay" and verdict.replay is not None
    assert (verdict.replay.topic, verdict.replay.key, verdict.replay.value) == (
        "orders",
        b"s-1",
        b'{"order_id": "o-\xc3\xa9"}',
    )


@pytest.mark.parametrize("topic", INPUTS)
def test_every_input_topic_can_be_replayed_to(topic: str) -> None:
    verdict = judge(letter(topic), None, HERE)
    assert verdict.replay is not None and verdict.replay.topic == topic


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("payouts-approved", "outcome_topic"),  # a forged letter put 99,999.00 EUR there, unreviewed
        ("payouts-rejected", "outcome_topic"),
        ("payouts-review-escalated", "outcome_topic"),
        ("dead-letters", "outcome_topic"),
        ("streamline-held-reviews", "internal_topic"),
        ("streamline-settlement-ledger-changelog", "internal_topic"),
        ("somebody-elses-topic", "unknown_topic"),
    ],
)
def test_a_letter_naming_any_other_topic_is_refused(topic: str, why: str) -> None:
    verdict = judge(letter(topic, value=FORGED_PAYOUT), None, HERE)
    assert (verdict.action, verdict.why, verdict.replay) == ("refuse", why, None)
    assert topic in verdict.detail


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json at all \xff",
        b'["a", "list"]',
        orjson.dumps({"source_topic": "orders", "payload_base64": "Zm9v"}),
        orjson.dumps({**orjson.loads(letter()), "payload_base64": "not base64!"}),
        orjson.dumps({**orjson.loads(letter()), "source_offset": -1}),
    ],
)
def test_a_record_that_is_not_a_dead_letter_is_refused(raw: bytes | None) -> None:
    verdict = judge(raw, None, HERE)
    assert (verdict.action, verdict.why) == ("refuse", "not_a_dead_letter")


def test_conflicting_duplicates_are_skipped_unless_asked_for_and_never_sent_to_an_outcome() -> None:
    decision = letter("review-decisions", "conflicting_duplicate")
    assert (judge(decision, None, HERE).action, judge(decision, None, HERE).why) == (
        "skip",
        "conflicting_duplicate",
    )
    assert judge(decision, "conflicting_duplicate", HERE).action == "replay"
    ledger = letter("payouts-approved", "conflicting_duplicate")
    assert judge(ledger, "conflicting_duplicate", HERE).why == "outcome_topic"


def test_letters_with_nothing_whole_to_send_are_skipped_and_say_why() -> None:
    truncated = judge(letter(value=b"x" * 1000, limit=100), None, HERE)
    assert (truncated.action, truncated.why) == ("skip", "truncated")
    assert "only 100 of 1000 bytes" in truncated.detail and "orders[1]@17" in truncated.detail
    assert judge(letter(value=None), None, HERE).why == "null_payload"


def test_another_reason_is_left_alone() -> None:
    assert judge(letter(reason="invalid_json"), "unknown_currency", HERE).action == "other"
    assert judge(b"garbage", "unknown_currency", HERE).why == "not_a_dead_letter"  # listed whatever is asked


def test_the_report_counts_by_topic_and_reason_and_lists_what_it_left() -> None:
    report = Report()
    records = [
        letter("orders"),
        letter("review-decisions"),
        letter("payouts-approved", value=FORGED_PAYOUT),
        b"\x1b[2J not a letter",
        letter(value=b"x" * 1000, limit=100),
        letter(reason="invalid_json"),
    ]
    for offset, raw in enumerate(records):
        report.add(f"dead-letters[0]@{offset}", judge(raw, None if offset < 5 else "x", HERE))
    lines = report.lines(dry_run=True)
    assert lines[:3] == [
        "would replay 2 dead letters (1 to orders, 1 to review-decisions)",
        "refused 2: 1 not_a_dead_letter, 1 outcome_topic",
        "skipped 1: 1 truncated",
    ]
    assert lines[3].startswith("  refused dead-letters[0]@2: outcome_topic: names payouts-approved")
    assert lines[4].startswith("  refused dead-letters[0]@3: not_a_dead_letter: invalid_json")
    assert lines[5].startswith("  skipped dead-letters[0]@4: truncated: only 100 of 1000 bytes")
    assert lines[6] == "left 1 with another reason"
    assert not any("\x1b" in line for line in lines)
    assert Report().lines(dry_run=False) == ["replayed 0 dead letters (nothing matched)"]


def test_the_destinations_are_the_pipelines_own_topics(make_settings) -> None:
    settings: Settings = make_settings(topic_prefix="staging.", app_id="payouts")
    ctx = context.context(settings.with_embedded_broker("127.0.0.1:1"))
    for name in (*INPUTS, *OUTCOMES):
        ctx.topics[name]  # declared by the stages and timers of a built pipeline
    destinations = Destinations.of(ctx.topics, "payouts", INPUTS)
    assert destinations.inputs == {f"staging.{name}" for name in INPUTS}
    assert destinations.outcomes == {f"staging.{name}" for name in OUTCOMES}
    assert destinations.refusal("orders") == "unknown_topic"  # another deployment's, unprefixed
    assert destinations.refusal("payouts-held-reviews") == "internal_topic"


def test_a_replayed_letter_keeps_an_empty_key_apart_from_none() -> None:
    raw = encode(
        dead_letter_for(Origin("orders", 0, 1), InvalidRecord("r", "d"), key=b"", value=b"v", now=NOW)
    )
    verdict = judge(raw, None, HERE)
    assert verdict.replay is not None and verdict.replay.key == b""
    assert base64.b64decode(orjson.loads(raw)["payload_base64"]) == b"v"
