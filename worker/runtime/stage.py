"""A stage: the one way to write a step of the pipeline, and the rules the runtime applies to every one.

A stage is a name, a source topic, a decoder and a handler. The handler gets one decoded record and
an `Outbox`; it calls pure rules, reads and writes the tables it was given, and puts what the stage
publishes in the outbox. Everything else belongs to the runtime, the same for every stage:

- a message the decoder or a rule refuses (`InvalidRecord`) goes to `dead-letters` with its reason;
- an error that escapes the handler is a bug, not bad input, and follows `PROCESSING_ERRORS`:
  `dead-letter` (the message goes to `dead-letters` as `processing_error`, and the stage goes on) or
  `stop` (the message's partition stops there, neither acknowledged nor committed, until
  `python -m worker skip`); it is logged once and counted either way;
- the outbox is published, and a message is acknowledged (so its offset may be committed) only once
  the broker has confirmed everything published from it.

Two engines run stages (`Engine`): batches of a fetch for stateless hot stages, Faust agents for stages
whose tables must live with their source's partitions.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from faust.types import TopicT

from worker.errors import InvalidRecord
from worker.reasons import Reason
from worker.runtime import trace
from worker.runtime.logs import handling
from worker.runtime.observer import Observer
from worker.runtime.outbox import Consumed, Outbox

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: How much of an exception's text a dead letter and /readyz carry.
MAX_ERROR_TEXT = 500


class Engine(enum.Enum):
    """How a stage consumes its source."""

    BATCH = "batch"  #: its own consumer group, a fetch at a time: the stateless hot stages
    STREAM = "stream"  #: a Faust agent: stages with tables partitioned like their source


class ErrorPolicy(enum.Enum):
    """What a processing error (an exception escaping a handler) does: `PROCESSING_ERRORS`."""

    DEAD_LETTER = "dead-letter"
    STOP = "stop"


@dataclass(frozen=True)
class Stage(Generic[T]):
    """One step of the pipeline."""

    name: str
    source: TopicT
    decode: Callable[[bytes | None], T]
    handle: Callable[[T, Outbox], None]
    engine: Engine = Engine.STREAM
    #: Called after each batch of messages, before its outbox is published: a stage that keeps state
    #: per key writes it here once per batch instead of once per message.
    end_batch: Callable[[Outbox], None] | None = None


class Runner:
    """Runs one stage's decoder and handler on consumed messages, applying the rules of every stage."""

    def __init__(
        self,
        stage: Stage[Any],
        policy: ErrorPolicy,
        observer: Observer,
        mask: Callable[[str], str],
        spans: trace.Exporter | None = None,
    ) -> None:
        self.stage, self.policy, self.observer, self.mask = stage, policy, observer, mask
        self.spans = spans  #: where finished hops go (OpenTelemetry), if anywhere

    @property
    def name(self) -> str:
        """The stage's name."""
        return self.stage.name

    def run(self, message: Consumed, out: Outbox, *, may_stop: bool = True) -> str | None:
        """Decode and handle `message` into `out`. None when the message is done with (its output or
        its dead letter is in `out`); the error, as text, when processing must stop at it
        (`PROCESSING_ERRORS=stop`, unless not `may_stop`: an operator skipped it for another stage)."""
        out.source, mark = message, out.mark()
        token = handling.set(message)  # log lines name the message being handled
        parent = trace.of_headers(message.headers)
        span = trace.child(parent)  # this hop: what the stage publishes carries it
        traced, started = trace.current.set(span), time.time_ns() if self.spans is not None else 0
        try:
            self.stage.handle(self.stage.decode(message.value), out)
        except InvalidRecord as error:
            out.rollback(mark)
            out.reject(message, error)
        except Exception as exc:
            out.rollback(mark)
            return self._failed(message, exc, out, may_stop)
        finally:
            trace.current.reset(traced)
            handling.reset(token)
            if self.spans is not None:
                self.spans.finished(self.name, span, parent, started, message)
        return None

    def end_batch(self, out: Outbox) -> None:
        """The stage's end-of-batch step, if it has one."""
        out.source = None
        if self.stage.end_batch is not None:
            self.stage.end_batch(out)

    def _failed(self, message: Consumed, exc: Exception, out: Outbox, may_stop: bool) -> str | None:
        error = self.mask(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_TEXT]
        where = f"{message.topic}[{message.partition}]@{message.offset}"
        stops = self.policy is ErrorPolicy.STOP and may_stop
        logger.error(
            "processing error in stage %s at %s: %s (%s)",
            self.name,
            where,
            error,
            "the partition stops here until `python -m worker skip`" if stops else "dead-lettered",
            exc_info=exc,
        )
        self.observer.processing_error(self.name)
        if stops:
            return error
        out.reject(message, InvalidRecord(Reason.PROCESSING_ERROR, f"stage {self.name}: {error}"))
        return None
