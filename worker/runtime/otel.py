"""OpenTelemetry export of each hop's span, with the same ids as its `traceparent` headers.

Off by default, and the worker runs without OpenTelemetry: spans are exported only when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set and the `otel` extra is installed (`pip install -e '.[otel]'`).
The exporter reads the standard `OTEL_*` variables itself (endpoint, headers, timeout).
"""

from __future__ import annotations

import atexit
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from worker.runtime.trace import Exporter, Span

logger = logging.getLogger(__name__)


def exporter(environ: Mapping[str, str] = os.environ) -> Exporter | None:
    """The span exporter the environment asks for, or None (no endpoint, or no OpenTelemetry)."""
    if not environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the opentelemetry extra is not installed: "
            "no spans are exported (pip install 'streamline[otel]')"
        )
        return None
    processor = BatchSpanProcessor(OTLPSpanExporter())
    atexit.register(processor.shutdown)  # what is still buffered leaves with the process
    return Spans(processor)


class Spans:
    """Hands each finished hop to an OpenTelemetry span processor, as a span with our ids."""

    def __init__(self, processor: Any, service: str = "streamline") -> None:
        from opentelemetry.sdk.resources import Resource

        self.processor, self.resource = processor, Resource.create({"service.name": service})

    def finished(self, stage: str, span: Span, parent: Span | None, started_ns: int, message: Any) -> None:
        """Export stage `stage`'s handling of `message` as `span`, under `parent`."""
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanKind

        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": message.topic,
            "messaging.kafka.destination.partition": message.partition,
            "messaging.kafka.message.offset": message.offset,
        }
        self.processor.on_end(
            ReadableSpan(
                name=stage,
                context=_context(span, remote=False),
                parent=_context(parent, remote=True) if parent is not None else None,
                resource=self.resource,
                attributes=attributes,
                kind=SpanKind.CONSUMER,
                start_time=started_ns,
                end_time=time.time_ns(),
            )
        )


def _context(span: Span, *, remote: bool) -> Any:
    from opentelemetry.trace import SpanContext, TraceFlags

    flags = TraceFlags(int(span.flags, 16))
    return SpanContext(int(span.trace_id, 16), int(span.span_id, 16), is_remote=remote, trace_flags=flags)
