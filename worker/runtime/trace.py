"""W3C trace context (`traceparent`) carried in Kafka headers, from the order onward.

    traceparent: 00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>

Every hop is a span: the runtime reads the consumed message's `traceparent` (`of_headers`), starts a
child span for the stage's work (`child`), and every message the stage publishes, dead letters
included, carries that span as its parent (`header`). A message without a valid `traceparent` (none,
or one that does not parse) starts a new trace: an invalid header is replaced, never a dead letter.

`current` is the span of the message being handled, set by the runtime (`worker.runtime.stage`): log
lines read its trace id, and the outbox stamps what the stage publishes with it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, NamedTuple, Protocol

HEADER = "traceparent"
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
#: Kafka headers as the producer takes them: (name, value) pairs, in a list (aiokafka's record batch
#: builder takes nothing else).
Headers = list[tuple[str, bytes]]


class Span(NamedTuple):
    """A span of a trace: the trace id, this span's id, and the trace flags (01: sampled)."""

    trace_id: str
    span_id: str
    flags: str = "01"

    def header(self) -> Headers:
        """The Kafka headers that make this span the parent of a message's next hop."""
        return [(HEADER, f"00-{self.trace_id}-{self.span_id}-{self.flags}".encode())]


#: The span of the message being handled now (None outside a message).
current: ContextVar[Span | None] = ContextVar("trace_span", default=None)


def parse(value: bytes | str | None) -> Span | None:
    """The span a `traceparent` value names, or None when it is absent or not valid W3C trace context."""
    if value is None:
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    found = _TRACEPARENT.fullmatch(text.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags = found.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return Span(trace_id, span_id, flags)


def of_headers(headers: Iterable[tuple[str, Any]] | None) -> Span | None:
    """The span in a message's `traceparent` header, if it has a valid one."""
    for name, value in headers or ():
        if name.lower() == HEADER:
            return parse(value)
    return None


def traceparent() -> str | None:
    """The `traceparent` value of the message being handled now, if any (to keep with a record)."""
    span = current.get()
    return None if span is None else span.header()[0][1].decode()


def new_trace() -> Span:
    """The first span of a new trace."""
    return Span(_hex(128), _hex(64))


def child(parent: Span | None) -> Span:
    """A new span under `parent` (the same trace), or the first span of a new trace."""
    if parent is None:
        return new_trace()
    return Span(parent.trace_id, _hex(64), parent.flags)


def _hex(bits: int) -> str:
    # Ids need to be unique, not secret: `random` costs a tenth of `secrets` on every hop. Never 0
    # (an all-zero id is invalid).
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


class Exporter(Protocol):
    """Where finished hops go (`worker.runtime.otel` sends them to an OpenTelemetry collector)."""

    def finished(self, stage: str, span: Span, parent: Span | None, started_ns: int, message: Any) -> None:
        """Stage `stage` has handled `message` as `span` (under `parent`), from `started_ns` until now."""
