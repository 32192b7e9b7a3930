"""Log output: JSON lines with the message's context, and secrets masked in every line."""

from __future__ import annotations

import io
import logging

import orjson
from aiokafka.protocol.admin import SaslAuthenticateRequest_v1
from pydantic import SecretStr

from worker.runtime.logs import JsonFormatter, Printable, Redact, Repeats, logging_config, printable

PASSWORD = "pa'ss\\word-9f3k"


def emit(logger_name: str, *args: object, handler_filter: logging.Filter | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    if handler_filter is not None:
        handler.addFilter(handler_filter)
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.info(*args)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_json_line_carries_the_named_arguments_of_the_call() -> None:
    line = emit("t.review", "held: payout_id=%s seller_id=%r net=%s (%d%%)", "po-1", "s-9", "12.50", 3)
    document = orjson.loads(line)
    assert line.count("\n") == 1
    assert document["message"] == "held: payout_id=po-1 seller_id='s-9' net=12.50 (3%)"
    assert (document["payout_id"], document["seller_id"], document["net"]) == ("po-1", "s-9", "12.50")
    assert document["level"] == "info" and document["logger"] == "t.review"


def test_an_exception_stays_inside_its_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("t.crash")
    logger.addHandler(handler)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed order_id=%s", "o-1")
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    document = orjson.loads(line)
    assert "ValueError: boom" in document["exception"] and document["order_id"] == "o-1"


def test_json_is_opt_in() -> None:
    assert logging_config("text", "info") is None
    config = logging_config("json", "debug")
    assert config is not None and config["root"]["level"] == "DEBUG"


def test_the_sasl_plain_password_aiokafka_logs_at_debug_is_masked() -> None:
    # aiokafka.conn logs every request at debug; a SASL/PLAIN one carries the password as bytes.
    request = SaslAuthenticateRequest_v1(b"\x00api-key\x00" + PASSWORD.encode())
    redact = Redact([SecretStr(PASSWORD), SecretStr("")])
    line = emit("aiokafka.conn", "Request to %s:%d %d: %s", "b", 9092, 4, request, handler_filter=redact)
    assert "api-key" in line and "***" in line
    assert PASSWORD not in line and repr(PASSWORD.encode())[2:-1] not in line
    assert "9f3k" not in line


def test_nothing_to_mask_leaves_the_record_alone() -> None:
    line = emit("t.plain", "rate=%s", 3, handler_filter=Redact([SecretStr("")]))
    assert orjson.loads(line)["rate"] == 3


FORGED = "s-1\n2026-11-28 10:00:00 [WARNING] review decision posted: payout_id=po-FAKE decision=approve"


def emit_text(logger_name: str, *args: object, exc: BaseException | None = None) -> str:
    """What a text handler with the worker's filter writes for one call."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    handler.addFilter(Printable())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning(*args, exc_info=(type(exc), exc, None) if exc else None)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_newline_in_message_data_cannot_forge_a_log_line() -> None:
    out = emit_text(
        "worker.payouts.stages", "payout held for review: payout_id=%s seller_id=%s", "po-1", FORGED
    )
    assert out.count("\n") == 1 and out.startswith("[WARNING] payout held")
    assert "seller_id=s-1\\n2026-11-28" in out


def test_escape_sequences_and_invisible_reordering_never_reach_the_log() -> None:
    data = "s-\x1b[2J\x1b[31mred\x07\r\u202egnp.exe\u2028\x85\x00"
    out = emit_text(
        "worker.review.stages", "seller_id=%s key=%r other=%s n=%d", data, data, ValueError(data), 3
    )
    assert not any(ch in out[:-1] for ch in "\x1b\x07\r\u202e\u2028\x85\x00\n")
    assert "s-\\x1b[2J\\x1b[31mred\\x07\\r\\u202egnp.exe\\u2028\\x85\\x00" in out
    assert "n=3" in out and "key='s-\\x1b[2J" in out  # %r of a string was safe already: left as it was


def test_a_line_without_arguments_and_a_mapping_are_escaped_too() -> None:
    assert emit_text("worker.x", f"seller_id={FORGED}").count("\n") == 1
    assert emit_text("worker.x", "seller_id=%(s)s", {"s": FORGED}).count("\n") == 1


def test_json_lines_carry_the_escaped_values() -> None:
    line = emit("worker.t", "held: seller_id=%s", "s-1\x1b[31m", handler_filter=Printable())
    document = orjson.loads(line)
    assert document["seller_id"] == "s-1\\x1b[31m" and document["message"] == "held: seller_id=s-1\\x1b[31m"


def test_other_libraries_keep_their_tables_but_lose_escape_sequences() -> None:
    table = "┌───┐\n│ t │\n└───┘"
    out = emit_text("faust.tables.recovery", "Highwater for %s:\n%s", "\x1b[31mx", table)
    assert table in out and "\\x1b[31mx" in out and "\x1b" not in out


def test_a_traceback_keeps_its_lines_but_not_the_escape_sequences_of_its_message() -> None:
    try:
        raise ValueError("bad seller \x1b[31ms-1")
    except ValueError as exc:
        out = emit_text("worker.x", "failed", exc=exc)
    assert "ValueError: bad seller \\x1b[31ms-1" in out and "\x1b" not in out


def test_printable_leaves_ordinary_text_alone() -> None:
    assert printable("Zürich 東京 café ✓ €12.50") == "Zürich 東京 café ✓ €12.50"
    assert printable("a\tb\nc", keep="\n") == "a\\tb\nc"


METADATA = "Unable to update metadata"
HELD = "(held back 249 times in the last 10s)"


def aiokafka_record(msg: str, *args: object, name: str = "aiokafka.conn", level: int = logging.ERROR):
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_vanished_broker_is_each_line_once_a_window_with_the_count_held_back() -> None:
    now = [0.0]
    repeats = Repeats(logging.WARNING, window=10, clock=lambda: now[0])
    refused = "Unable connect to node with id %s: %s"
    shown = []
    for tick in range(250):  # a second of aiokafka against a refused port
        now[0] = tick / 250
        for record in (aiokafka_record(refused, 111, "refused"), aiokafka_record(METADATA)):
            if repeats.filter(record):
                shown.append(record.getMessage())
    assert shown == ["Unable connect to node with id 111: refused", METADATA]

    now[0] = 10.5
    later = aiokafka_record(refused, 111, "re\x1bfused")  # the same line, but for the escape sequence
    assert repeats.filter(later)  # not the same text: shown
    later = aiokafka_record(refused, 111, "refused")
    assert repeats.filter(later) and Printable().filter(later)
    assert len(later.args) == 3  # type: ignore[arg-type]  # still paired with placeholders: escaped
    assert later.getMessage() == f"Unable connect to node with id 111: refused {HELD}"
    once = aiokafka_record(METADATA)
    assert repeats.filter(once) and once.getMessage() == f"{METADATA} {HELD}"
    assert not repeats.filter(aiokafka_record(refused, 111, "refused"))  # a new window began


def test_another_topic_is_another_line_and_debug_shows_every_line() -> None:
    repeats = Repeats(logging.WARNING, window=10, clock=lambda: 0.0)
    missing = "Topic %s not found in cluster metadata"
    assert [repeats.filter(aiokafka_record(missing, t, level=logging.WARNING)) for t in "aba"] == [
        True,
        True,
        False,
    ]
    verbose = Repeats(logging.DEBUG, window=10, clock=lambda: 0.0)
    assert all(verbose.filter(aiokafka_record(missing, "a")) for _ in range(3))


def test_repeats_leave_every_other_line_alone() -> None:
    repeats = Repeats(logging.WARNING, window=10, clock=lambda: 0.0)
    for _ in range(3):
        assert repeats.filter(aiokafka_record("Heartbeat sent", level=logging.INFO))
        ours = aiokafka_record("payout held", name="worker.payouts.stages", level=logging.WARNING)
        assert repeats.filter(ours)
