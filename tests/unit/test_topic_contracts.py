"""The topic contracts (`docs/contracts/`): as generated, tied to the codec, the docs and the stages.

- the committed files are what `make contracts` writes now;
- every bad input of the catalogues fails its schema for the reason the codec gives, or is one of the
  rules a schema cannot state (GAPS, also listed in docs/contracts/README.md);
- for every decoder, each field given each probe value: the schema and the codec agree on valid;
- every ```json example of README.md and docs/*.md has a `<!-- schema: topic -->` marker and validates;
- the flow's receiving stages are the stages `build` runs, on the same topics.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.contracts import CONTRACTS, errors, first_reason
from tests.integration.test_bad_input import CATALOGUE, POISON_TIMES
from tests.unit.test_codec import BAD_ORDERS
from tests.unit.test_fuzz import DECISION, LETTER, PAYOUT, SEED
from worker.contracts.files import rendered
from worker.contracts.flow import OPERATIONS, TOPICS
from worker.errors import InvalidRecord
from worker.payouts.records import decode_order, decode_payout
from worker.payouts.rules import FeeSchedule, payout_for
from worker.reasons import DEAD_LETTER_REASONS, MEANINGS, Reason
from worker.review.records import ReviewedPayout, decode_decision, decode_state
from worker.runtime.deadletters import decode_dead_letter
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CURRENCIES = frozenset({"EUR", "USD", "GBP"})
FEES = FeeSchedule(Settings.model_fields["fee_rate"].default, Settings.model_fields["fee_fixed"].default)
#: Times the codec refuses that RFC 3339 allows: UTC cannot hold them (or a leap second).
UTC_EDGES = (*POISON_TIMES, "2026-11-28T23:59:60Z")
#: What the codec refuses that no JSON Schema can say, and why (docs/contracts/README.md lists them).
GAPS = {
    "null_value": "a tombstone has no JSON to validate",
    "empty_value": "an empty value is not JSON",
    "invalid_utf8": "bytes that are not UTF-8 are not JSON",
    "invalid_json": "a value that is not JSON has nothing to validate",
    "oversized": "a schema sees the parsed value, not its size in bytes",
    "unknown_currency": "the currencies are the deployment's CURRENCIES setting",
    "future_timestamp": "'in the future' depends on the reader's clock",
    "fee_exceeds_amount": "the fee depends on FEE_RATE and FEE_FIXED",
    "invalid_timestamp at a UTC edge": "RFC 3339 allows a time UTC cannot hold, and leap seconds",
}


def test_the_committed_contracts_are_what_the_code_generates() -> None:
    committed = {path.name: path.read_text(encoding="utf-8") for path in CONTRACTS.glob("*.json")}
    generated = rendered()
    stale = sorted(name for name in generated if committed.get(name) != generated[name])
    extra = sorted(set(committed) - set(generated))
    assert not stale and not extra, f"run `make contracts`: {stale} differ, {extra} are not generated"


def _order_case(raw: object) -> tuple[bytes | None, str]:
    encoded = raw if raw is None or isinstance(raw, bytes) else orjson.dumps(raw)
    return encoded, "orders"


def _codec_reason(topic: str, raw: bytes | None) -> str:
    try:
        if topic == "orders":
            payout_for(decode_order(raw, currencies=CURRENCIES, now=NOW), FEES, now=NOW)
        else:
            decode_decision(raw)
    except InvalidRecord as error:
        return error.reason
    raise AssertionError(f"the codec accepts {raw!r:.200}")


BAD_INPUT = (
    [_order_case(raw) for raw, _ in BAD_ORDERS]
    + [(value, "orders") for _, _, value in CATALOGUE]
    + [(orjson.dumps({**DECISION, "decided_at": at}), "review-decisions") for at in POISON_TIMES]
    + [(orjson.dumps({**DECISION, "decision": "maybe"}), "review-decisions")]
    + [(orjson.dumps({**DECISION, "reason": "x" * 2001}), "review-decisions")]
)


@pytest.mark.parametrize(("raw", "topic"), BAD_INPUT)
def test_bad_input_fails_its_schema_for_the_codecs_reason_or_is_a_known_gap(
    raw: bytes | None, topic: str
) -> None:
    expected = _codec_reason(topic, raw)
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        value = None
    if value is None or expected in GAPS:
        assert expected in GAPS, f"{expected}: not JSON, yet not a known gap"
        assert value is None or not errors(topic, value), f"the schema now catches {expected}: update GAPS"
        return
    found = first_reason(topic, value)
    if found is None and expected == "invalid_timestamp":
        assert any(edge in raw for edge in (e.encode() for e in UTC_EDGES)), raw  # type: ignore[operator]
        return
    assert found == expected, f"the codec says {expected}, the schema {found}: {raw!r:.200}"


ABSENT = object()
#: Values each field of each decoded record is given in turn.
PROBES: list[Any] = [
    ABSENT,
    None,
    "",
    "  ",
    0,
    7,
    -1,
    1.5,
    True,
    [],
    {},
    "x",
    " x ",
    "0",
    "0.00",
    "12.5",
    "1.005",
    "-1.00",
    "1e3",
    "1000000000.00",
    "1000000000.01",
    "2026-11-28T10:00:00Z",
    "2026-11-28T10:00:00",
    "2026-11-28 10:00:00Z",
    "Z2FyYmFnZQ==",
    "Z2Fy=",
    "approve",
    "reject",
    "invalid_json",
    "y" * 2001,
]
#: Where the codec and the schema differ on purpose, by (topic, field): which probes.
KNOWN: dict[tuple[str, str], Callable[[Any], bool]] = {
    # A dead letter of another version may lack these, and carry a reason this one does not know.
    ("dead-letters", "source_partition"): lambda probe: probe is ABSENT,
    ("dead-letters", "source_offset"): lambda probe: probe is ABSENT,
    ("dead-letters", "payload_size"): lambda probe: probe is ABSENT,
    ("dead-letters", "payload_truncated"): lambda probe: probe is ABSENT,
    ("dead-letters", "reason"): lambda probe: isinstance(probe, str) and bool(probe.strip()),
    # Python's base64 reads a surplus `=`; the worker writes standard padding, as the schema says.
    ("dead-letters", "payload_base64"): lambda probe: probe == "Z2Fy=",
    ("dead-letters", "key_base64"): lambda probe: probe == "Z2Fy=",
    # Python reads a space for the `T` of a date-time; RFC 3339 (and the schema) asks for `T`.
    ("*", "*"): lambda probe: probe == "2026-11-28 10:00:00Z",
    ("orders", "currency"): lambda probe: True,  # GAPS: unknown_currency
}
DECODERS: dict[str, tuple[Callable[[bytes], Any], dict[str, Any]]] = {
    "orders": (lambda raw: decode_order(raw, currencies=CURRENCIES, now=NOW), {**SEED, "currency": "EUR"}),
    "payouts": (decode_payout, PAYOUT),
    "payouts-rejected": (lambda raw: decode_state(raw, ReviewedPayout), {**PAYOUT, "review": DECISION}),
    "review-decisions": (decode_decision, DECISION),
    "dead-letters": (decode_dead_letter, LETTER),
}


def _codec_accepts(decode: Callable[[bytes], Any], value: dict[str, Any]) -> bool:
    try:
        decode(orjson.dumps(value))
    except InvalidRecord:
        return False
    return True


@pytest.mark.parametrize("topic", sorted(DECODERS))
def test_the_schema_and_the_codec_agree_on_every_field(topic: str) -> None:
    decode, valid = DECODERS[topic]
    assert _codec_accepts(decode, valid) and not errors(topic, valid)
    disagree = []
    for field in valid:
        for probe in PROBES:
            value = {k: v for k, v in valid.items() if k != field or probe is not ABSENT}
            if probe is not ABSENT:
                value[field] = probe
            codec, schema = _codec_accepts(decode, value), not errors(topic, value)
            known = KNOWN.get((topic, field), KNOWN["*", "*"])(probe) or KNOWN["*", "*"](probe)
            if codec != schema and not known:
                disagree.append(f"{field}={probe!r:.20}: codec {codec}, schema {schema}")
    assert not disagree, f"{topic}: {disagree}"


#: Before every ```json block: the topic whose schema it follows, or `none` (an HTTP answer...).
MARKER = re.compile(r"<!-- schema: ([a-z-]+) -->")


def _examples() -> list[tuple[str, str | None, str]]:
    """Every ```json block of README.md and docs/*.md: (where, its marker's topic, its text)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if line.strip() == "```json":
                marker = MARKER.fullmatch(lines[n - 1].strip()) if n else None
                end = lines.index("```", n + 1)
                where = f"{path.relative_to(ROOT)}:{n + 1}"
                found.append((where, marker and marker.group(1), "\n".join(lines[n + 1 : end])))
    return found


def test_every_json_example_of_the_docs_has_a_schema_marker() -> None:
    examples = _examples()
    assert examples, "no ```json example found"
    unmarked = [where for where, topic, _ in examples if topic is None]
    assert not unmarked, f"put <!-- schema: TOPIC --> on the line before: {unmarked}"


@pytest.mark.parametrize(("where", "topic", "text"), [e for e in _examples() if e[1] != "none"])
def test_every_json_example_of_the_docs_validates(where: str, topic: str | None, text: str) -> None:
    assert topic in {t.name for t in TOPICS}, f"{where}: no topic {topic}"
    found = [error.message for error in errors(topic, orjson.loads(text))]
    assert not found, f"{where}: {found}"


def test_the_receiving_stages_are_the_stages_the_pipeline_runs(make_settings) -> None:
    from worker.main import build

    settings = make_settings(topic_prefix="p-").with_embedded_broker("127.0.0.1:1")
    pipeline = build(settings)
    running = {
        (name, topic.removeprefix("p-"))
        for name, agent in pipeline.agents.items()
        for topic in agent.channel.topics  # type: ignore[union-attr]
        if not topic.startswith(settings.app_id)
    }
    # replay (a command) and journey (a view that reads one record again) receive, but are no stages
    stages = {op.stage for op in OPERATIONS if op.action == "receive"} - {"replay", "journey"}
    declared = {(op.stage, op.topic) for op in OPERATIONS if op.action == "receive" and op.stage in stages}
    assert declared == running


def test_every_dead_letter_reason_is_documented_and_in_the_schema() -> None:
    wire_format = (ROOT / "docs" / "wire-format.md").read_text(encoding="utf-8")
    reasons = orjson.loads((CONTRACTS / "dead-letters.schema.json").read_bytes())
    enum = reasons["$defs"]["DeadLetter"]["properties"]["reason"]["enum"]
    assert enum == list(DEAD_LETTER_REASONS)
    assert [r for r in DEAD_LETTER_REASONS if f"`{r}`" not in wire_format] == []
    assert set(MEANINGS) == set(Reason)
