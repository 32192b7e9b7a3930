"""Trace context: parsing `traceparent`, a new span per hop, the headers a stage's output and dead
letters carry, and the trace id in JSON log lines."""

from __future__ import annotations

import logging

import orjson
import pytest

from tests.stages import record, run
from tests.unit.test_logs import emit
from worker.errors import InvalidRecord
from worker.runtime import otel, trace
from worker.runtime.observer import Observer
from worker.runtime.outbox import Outbox
from worker.runtime.stage import ErrorPolicy, Runner, Stage

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        VALID.upper(),  # lower-case hex only
        "ff" + VALID[2:],  # version ff is invalid
        VALID.replace("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 32),
        VALID.replace("00f067aa0ba902b7", "0" * 16),
        VALID + "-extra",
        b"\xff\xfe",
    ],
)
def test_an_absent_or_invalid_traceparent_gives_no_span(value) -> None:
    assert trace.parse(value) is None


def test_a_valid_traceparent_parses_and_a_child_keeps_its_trace_with_a_new_span() -> None:
    span = trace.parse(VALID.encode())
    assert span == trace.Span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")
    child = trace.child(span)
    assert (child.trace_id, child.flags) == (span.trace_id, "01") and child.span_id != span.span_id
    assert trace.parse(child.header()[0][1]) == child
    assert trace.of_headers([("other", b"x"), ("TraceParent", VALID.encode())]) == span
    fresh = trace.child(None)
    assert trace.parse(fresh.header()[0][1]) == fresh and fresh.trace_id != span.trace_id


def stage(handle) -> Stage:
    return Stage("t", object(), lambda raw: raw, handle)  # type: ignore[arg-type]


def test_what_a_stage_publishes_and_dead_letters_carries_a_child_of_the_consumed_trace() -> None:
    topic = object()

    def handle(value: bytes, out: Outbox) -> None:
        if value == b"bad":
            raise InvalidRecord("bad", "refused")
        out.send(topic, value, key=b"k")  # type: ignore[arg-type]

    given = trace.parse(VALID)
    good, bad = record(b"ok"), record(b"bad", offset=1)
    good.headers, bad.headers = [("traceparent", VALID.encode())], [("traceparent", VALID.encode())]
    outbox = run(stage(handle), good, bad, record(b"new", offset=2))

    first, fresh = (trace.of_headers(m.headers) for m in outbox.messages)
    [(_, _, refused)] = outbox.rejected
    assert first.trace_id == refused.trace_id == given.trace_id
    assert len({given.span_id, first.span_id, refused.span_id}) == 3
    assert fresh.trace_id != given.trace_id  # no traceparent: a trace of its own
    assert trace.current.get() is None  # nothing left behind for the next message


def test_a_json_log_line_logged_while_handling_a_message_has_its_trace_id() -> None:
    lines: list[str] = []

    def handle(value: bytes, out: Outbox) -> None:
        lines.append(emit("worker.t", "handling payout_id=%s", "po-1"))

    consumed = record(b"x")
    consumed.headers = [("traceparent", VALID.encode())]
    run(stage(handle), consumed)

    document = orjson.loads(lines[0])
    assert document["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert document["span_id"] != "00f067aa0ba902b7"
    assert "trace_id" not in orjson.loads(emit("worker.t", "outside any message"))
    logging.getLogger("worker.t").handlers.clear()


def test_opentelemetry_is_off_without_an_endpoint_and_without_the_extra() -> None:
    assert otel.exporter({}) is None
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:  # the extra is not installed: an endpoint alone turns nothing on
        assert otel.exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is None


def test_with_opentelemetry_a_hop_is_exported_with_the_ids_of_its_headers() -> None:
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exported = memory.InMemorySpanExporter()
    consumed = record(b"x")
    consumed.headers = [("traceparent", VALID.encode())]
    outbox, runner = Outbox(), Runner(stage(lambda v, out: None), ErrorPolicy.DEAD_LETTER, Observer(), str,
                                      otel.Spans(SimpleSpanProcessor(exported)))  # fmt: skip
    runner.run(consumed, outbox)

    [span] = exported.get_finished_spans()
    assert (span.name, f"{span.context.trace_id:032x}") == ("t", "4bf92f3577b34da6a3ce929d0e0e4736")
    assert f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
