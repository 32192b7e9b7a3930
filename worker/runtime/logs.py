"""Log output: Faust's human-readable lines by default, JSON lines with `LOG_FORMAT=json`.

A JSON line carries the message plus, when it is logged while an agent processes a message, that
message's topic, partition, offset and key (from Faust's current event) and its `trace_id` and
`span_id` (the hop's span, `worker.runtime.trace`), plus every `name=%s`
argument of the log call that does not clash with those (`payout_id=%s` becomes
`"payout_id": "po-..."`), plus any `extra=` field.
Faust's Worker applies this through `app.conf.logging_config`, for both entry points; `Printable`
escapes the control characters that message data brings into a line (a seller id with a newline
would forge a whole line, an escape sequence would reach the terminal), and `Redact` masks the
secrets in every line, whatever the format.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from faust.streams import current_event
from pydantic import SecretStr

from worker.runtime import trace

#: `name=%s`, `name=%r`, `name=%d`... in a %-style format string, and every other placeholder.
_PLACEHOLDER = re.compile(r"%%|(?:(\w+)=)?%[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[sdrifxXeEgGc]")
#: The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def logging_config(log_format: str, level: str) -> dict[str, Any] | None:
    """The `logging.config.dictConfig` for `log_format`; None keeps Faust's own (text) setup."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"level": {"crit": "CRITICAL"}.get(level, level.upper()), "handlers": ["json"]},
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the message's context."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(_event_context())
        span = trace.current.get()
        if span is not None:
            document["trace_id"], document["span_id"] = span.trace_id, span.span_id
        for name, value in _named_arguments(record).items():
            document.setdefault(name, value)  # the message being processed keeps its topic/offset
        document.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


#: The consumed message a stage is handling now, set by the runtime (`worker.runtime.stage`): a batch
#: stage has no Faust event, and a stream stage's batch has one event at a time.
handling: ContextVar[Any] = ContextVar("handling", default=None)


def _event_context() -> dict[str, Any]:
    message = handling.get()
    if message is None:
        event = current_event()
        if event is None:
            return {}
        message = event.message
    key = message.key
    context: dict[str, Any] = {"topic": message.topic, "partition": message.partition}
    context["offset"] = message.offset
    if isinstance(key, bytes):
        context["key"] = key.decode("utf-8", "replace")
    return context


def _named_arguments(record: logging.LogRecord) -> dict[str, Any]:
    """`payout_id=%s` in the format string, paired with its argument."""
    args = record.args
    if not isinstance(record.msg, str) or not isinstance(args, tuple) or not args:
        return {}
    names = [m.group(1) for m in _PLACEHOLDER.finditer(record.msg) if m.group(0) != "%%"]
    if len(names) != len(args):
        return {}
    return {name: _plain(value) for name, value in zip(names, args, strict=True) if name}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


#: What a terminal or a log reader takes as structure: C0 and C1 controls, DEL, the Unicode line and
#: paragraph separators and the bidirectional overrides (text that displays in another order).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Our own loggers log message data; other libraries' lines keep their line breaks (Faust's tables).
_OURS = "worker"


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character but those in `keep` escaped (`\\n`, `\\x1b`, `\\u202e`)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda match: _escaped(match[0], keep), text)


def _escaped(char: str, keep: str) -> str:
    if char in keep:
        return char
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


class _Shown:
    """An argument rendered in advance, escaped: what `%r` or `%s` of it shows."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class Printable(logging.Filter):
    """Escapes control characters in what a log line shows of its arguments (message data).

    Lines of the worker's own loggers lose every control character, line breaks included; other
    libraries' lines keep their line breaks and tabs (Faust logs tables) and lose the rest.
    Tracebacks keep their line breaks too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, with its arguments (or its message, when it has none) escaped."""
        keep = "" if record.name.split(".")[0] == _OURS else "\n\t"
        args = record.args
        if isinstance(args, tuple) and args:
            conversions = _conversions(record.msg, len(args))
            if conversions is None:
                _render(record, keep)
            else:
                record.args = tuple(_argument(a, c, keep) for a, c in zip(args, conversions, strict=True))
        elif args:  # a mapping: `%(name)s`
            _render(record, keep)
        elif isinstance(record.msg, str):
            record.msg = printable(record.msg, keep)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = printable(record.exc_text, keep="\n\t")
        return True


def _conversions(msg: object, count: int) -> list[str] | None:
    """The conversion (`s`, `r`, `d`...) of each placeholder of `msg`, if they pair with `count` args."""
    if not isinstance(msg, str):
        return None
    found = [m.group(0) for m in _PLACEHOLDER.finditer(msg) if m.group(0) != "%%"]
    if len(found) != count or any("*" in placeholder for placeholder in found):
        return None
    return [placeholder[-1] for placeholder in found]


def _argument(value: Any, conversion: str, keep: str) -> Any:
    if isinstance(value, int | float | Decimal) or value is None or conversion not in "sr":
        return value
    if conversion == "r":
        return value if isinstance(value, str) else _Shown(printable(repr(value), keep))
    return printable(value, keep) if isinstance(value, str) else _Shown(printable(str(value), keep))


def _render(record: logging.LogRecord, keep: str) -> None:
    """Format the message now and escape all of it (arguments that do not pair with placeholders)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it as it always does
        return
    record.msg, record.args = printable(message, keep), None


class Redact(logging.Filter):
    """Masks secret values in every record, also as Python shows them inside bytes.

    aiokafka logs each request at debug level, and a SASL/PLAIN request shows the password as bytes.
    """

    def __init__(self, secrets: Iterable[SecretStr]) -> None:
        super().__init__()
        values = [secret.get_secret_value() for secret in secrets if secret.get_secret_value()]
        forms = {form for value in values for form in (value, repr(value.encode())[2:-1], repr(value)[1:-1])}
        self.forms = sorted(forms, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, with any secret replaced by `***`."""
        if not self.forms:
            return True
        message = record.getMessage()
        if any(form in message for form in self.forms):
            record.msg, record.args = self.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        for form in self.forms:
            text = text.replace(form, "***")
        return text


class Chatter(logging.Filter):
    """Below `LOG_LEVEL=debug`, Faust's and aiokafka's narration is detail, not news.

    A person reads the worker's own lines (its start line, the summary every ten seconds, held payouts)
    and the warnings and errors someone should act on. Services starting and stopping, topic creation,
    assignment tables and group joins (INFO from Faust, mode and aiokafka, and mode's `[^Service]`
    lines under the worker's own service classes) pass only at debug; so do the warnings every
    rebalance brings (`BENIGN`).
    """

    LIBRARIES = ("faust", "mode", "aiokafka", "venusian")
    #: Warnings of a healthy group changing members: nothing to act on.
    BENIGN = (
        "Heartbeat failed for group",
        "because it is rebalancing",
        "RebalanceInProgressError",
        "Discarded commit for revoked partitions",
        "due to group error (%s), will rejoin",  # a commit the group's new generation refused
        "generation id is not  current",  # (sic) a heartbeat from the generation before
        "producer buffer full",  # Faust's flow control: table writes wait for the buffer to ebb
        "exception performing seek when flow not active",  # Faust, for a partition a rebalance took
        "is overlapping",  # a timer slower than its interval once (the storefront owes what it skipped)
    )

    def __init__(self, level: int) -> None:
        super().__init__()
        self.verbose = level <= logging.DEBUG

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless it is detail and the level is above debug."""
        if self.verbose:
            return True
        text = record.msg if isinstance(record.msg, str) else ""
        narration = text.startswith("[^") or record.name.startswith(self.LIBRARIES)
        if record.levelno < logging.WARNING:
            return not narration
        return not any(benign in text for benign in self.BENIGN)


class Repeats(logging.Filter):
    """A broker out of reach is news once every `window` seconds, not 250 times a second.

    aiokafka logs every failed connection, metadata refresh, fetch and send, for each of the worker's
    clients at each retry: about 250 lines a second once a cluster vanished, which bury everything
    else. A warning or error line of aiokafka's passes the first time it shows in `window` seconds (the
    same text: another topic or group is another line); the first one after that says how many times
    it was held back meanwhile. At `LOG_LEVEL=debug` every line passes.
    """

    #: Distinct lines remembered at most (then forgotten at once): lines that name offsets never repeat.
    MOST = 1000

    def __init__(self, level: int, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.verbose, self.window, self.clock = level <= logging.DEBUG, window, clock
        self._shown: dict[tuple[str, str], tuple[float, int]] = {}  # line -> (shown at, held back since)
        self._lock = threading.Lock()  # Faust's consumer and producer threads log too

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless the same line was shown less than `window` seconds ago."""
        if self.verbose or record.levelno < logging.WARNING or not record.name.startswith("aiokafka"):
            return True
        line, now = (record.name, record.getMessage()), self.clock()
        with self._lock:
            shown, held = self._shown.get(line, (-self.window, 0))
            if now - shown < self.window:
                self._shown[line] = (shown, held + 1)
                return False
            if len(self._shown) >= self.MOST:
                self._shown.clear()
            self._shown[line] = (now, 0)
        if held:
            _append(record, f" (held back {held} times in the last {now - shown:.0f}s)")
        return True


def _append(record: logging.LogRecord, text: str) -> None:
    """Add `text` to the record's line, its arguments still paired with their placeholders (`Printable`)."""
    if isinstance(record.args, tuple) and record.args:
        record.msg, record.args = f"{record.msg}%s", (*record.args, text)
    else:
        record.msg, record.args = record.getMessage() + text, None
