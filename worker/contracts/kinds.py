"""The wire's kinds of value as JSON Schema: money, times, text, base64, counts.

Each rule the codec enforces is one subschema of `allOf` whose `title` is the reason code the worker
gives when a value breaks it (`too_many_decimals`), so a failure under a schema names the dead letter
it would become. Patterns use only what every JSON Schema regex dialect shares (`^`, `$`, classes).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from worker.reasons import MEANINGS, Reason
from worker.review.records import MAX_REVIEW_TEXT
from worker.wire import AMOUNT_SHAPE, MAX_AMOUNT

JSON = dict[str, Any]

#: RFC 3339 with a zone (`Z` or `±hh:mm`); fractions of a second of any length.
TIMESTAMP = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
#: Standard base64 with its padding (what `base64.b64decode(validate=True)` reads).
BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def check(reason: Reason, **keywords: Any) -> JSON:
    """One rule of the codec: a value failing `keywords` is refused with `reason`."""
    return {"title": reason.value, "description": MEANINGS[reason], **keywords}


def kinds() -> dict[str, JSON]:
    """Every kind of wire value, by the name records refer to it with."""
    return {
        "Text": text("A string that is not blank."),
        "ReviewText": text(
            f"Not blank, at most {MAX_REVIEW_TEXT} characters (kept with its spaces trimmed).",
            check(Reason.TEXT_TOO_LONG, maxLength=MAX_REVIEW_TEXT),
        ),
        "Money": money(positive=False),
        "PositiveMoney": money(positive=True),
        "Timestamp": text(
            "ISO-8601 (RFC 3339) with a zone; the worker writes UTC with `Z`.",
            check(Reason.INVALID_TIMESTAMP, pattern=TIMESTAMP),
            format="date-time",
            examples=["2026-11-28T10:00:00Z"],
        ),
        "Base64": {
            "type": "string",
            "description": 'Bytes as standard base64 with padding; `""` is no bytes.',
            "contentEncoding": "base64",
            "allOf": [check(Reason.INVALID_BASE64, pattern=BASE64)],
        },
        "Count": {"type": "integer", "minimum": 0, "description": "A whole number of 0 or more."},
    }


def text(description: str, *checks: JSON, **keywords: Any) -> JSON:
    """A string that must not be blank, with further checks."""
    blank = check(Reason.MISSING_FIELD, pattern=r"\S")
    return {"type": "string", "description": description, **keywords, "allOf": [blank, *checks]}


def money(*, positive: bool) -> JSON:
    """Money as the codec reads it: a decimal string, exact, in cents."""
    above = "above zero" if positive else "zero or more"
    return {
        "type": "string",
        "description": (
            "Money as a decimal string: ASCII digits, optionally `.` and one or two decimals "
            f'(`"120"`, `"120.5"`, `"120.50"`), {above}, at most {MAX_AMOUNT}. Never a JSON number.'
        ),
        "examples": ["120.00"],
        "allOf": [
            check(Reason.INVALID_AMOUNT, pattern=f"^{AMOUNT_SHAPE.pattern}$"),
            check(Reason.TOO_MANY_DECIMALS, pattern=r"^[^.]*(\.[^.]{1,2})?$"),
            check(Reason.NON_POSITIVE_AMOUNT, pattern=r"^[0-9.]*[1-9]" if positive else r"^[^-]"),
            check(Reason.AMOUNT_TOO_LARGE, pattern=at_most(MAX_AMOUNT)),
        ],
    }


def at_most(limit: Decimal) -> str:
    """A pattern for decimal strings not above `limit`, a power of ten (a pattern cannot compare)."""
    digits = len(str(int(limit))) - 1
    if limit != Decimal(10) ** digits:
        raise ValueError(f"MAX_AMOUNT {limit} is not a power of ten: extend at_most() to state it")
    return rf"^-?0*([0-9]{{1,{digits}}}(\.[0-9]*)?|1{'0' * digits}(\.0*)?)$"
