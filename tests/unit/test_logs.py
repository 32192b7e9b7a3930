"""Log output: JSON lines with the message's context, and secrets masked in every line."""

from __future__ import annotations

import io
import logging

import orjson
from aiokafka.protocol.admin import SaslAuthenticateRequest_v1
from pydantic import SecretStr

from worker.logs import JsonFormatter, Redact, logging_config

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
