"""JSON Schema (draft 2020-12) of every record on the wire: from the Records' fields and the codec.

A field's annotation gives its kind (`Decimal` is positive money, `datetime` a timestamp, `str` text
that is not blank...); `RULES` gives the fields whose decoder says more than their annotation. Every
field is required (`null` where the annotation allows it), but those of `MAY_BE_ABSENT`: fields added
to a record later, which records written before them lack.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, get_args, get_origin

import faust

from worker.contracts.flow import Topic
from worker.contracts.kinds import JSON, kinds
from worker.payouts.records import Payout
from worker.reasons import DEAD_LETTER_REASONS, MEANINGS
from worker.review.records import DECISIONS, ReviewDecision, ReviewedPayout
from worker.runtime.deadletters import DeadLetter

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: How a schema names another: `#/$defs/Order` in a topic's file, elsewhere in AsyncAPI.
Ref = Callable[[str], JSON]
#: The kind of a field by its annotation.
BY_TYPE: dict[type, str] = {str: "Text", Decimal: "PositiveMoney", datetime: "Timestamp", int: "Count"}
PLAIN: dict[type, JSON] = {bool: {"type": "boolean"}, float: {"type": "number"}}


def _reasons() -> JSON:
    meanings = "; ".join(f"`{reason}`: {MEANINGS[reason]}" for reason in DEAD_LETTER_REASONS)
    return {"type": "string", "enum": list(DEAD_LETTER_REASONS), "description": meanings}


#: Fields whose decoder says more than their annotation (a subclass's fields follow its base's).
#: Fields a record (and the records built on it) may lack: added after it was first published.
MAY_BE_ABSENT: dict[type[faust.Record], frozenset[str]] = {
    Payout: frozenset(
        {
            "customer_id",
            "order_topic",
            "order_partition",
            "order_offset",
            "applied",
        }
    ),
    ReviewedPayout: frozenset({"held_at", "escalated_at"}),
}


def may_be_absent(cls: type[faust.Record], name: str) -> bool:
    """Whether field `name` of `cls` may be absent from a record on the wire."""
    return any(issubclass(cls, base) and name in names for base, names in MAY_BE_ABSENT.items())


RULES: dict[tuple[type[faust.Record], str], Callable[[Ref], JSON]] = {
    (Payout, "fee"): lambda ref: ref("Money"),
    (Payout, "applied"): lambda ref: {
        "type": ["object", "null"],
        "properties": {name: {"type": "string"} for name in ("fee_rate", "fee_fixed", "review_threshold")},
        "description": "The settings it was computed and screened with, as decimal strings (informational).",
    },
    (ReviewDecision, "decision"): lambda ref: {"type": "string", "enum": list(DECISIONS)},
    (ReviewDecision, "reviewer"): lambda ref: ref("ReviewText"),
    (ReviewDecision, "reason"): lambda ref: ref("ReviewText"),
    (DeadLetter, "reason"): lambda ref: _reasons(),
    (DeadLetter, "detail"): lambda ref: {"type": "string", "description": "For a person; may be empty."},
    (DeadLetter, "payload_base64"): lambda ref: ref("Base64"),
    (DeadLetter, "key_base64"): lambda ref: ref("Base64"),
}


def in_defs(name: str) -> JSON:
    """A reference within one topic's schema file."""
    return {"$ref": f"#/$defs/{name}"}


def record_schema(cls: type[faust.Record], ref: Ref) -> JSON:
    """The schema of one record: an object with every field of `cls`."""
    fields: Mapping[str, Any] = cls._options.fields
    return {
        "title": cls.__name__,
        "description": (inspect.getdoc(cls) or cls.__name__).splitlines()[0],
        "type": "object",
        "properties": {name: field_schema(cls, name, kind, ref) for name, kind in fields.items()},
        "required": [name for name in fields if not may_be_absent(cls, name)],
    }


def field_schema(cls: type[faust.Record], name: str, annotation: Any, ref: Ref) -> JSON:
    """The schema of field `name` of `cls`."""
    values = [arg for arg in get_args(annotation) if arg is not type(None)]
    if isinstance(annotation, types.UnionType) and len(values) == 1:
        return {"anyOf": [field_schema(cls, name, values[0], ref), {"type": "null"}]}
    rule = next((RULES[base, name] for base in cls.__mro__ if (base, name) in RULES), None)
    if rule is not None:
        return rule(ref)
    if get_origin(annotation) is list:
        return {"type": "array", "items": field_schema(cls, name, values[0], ref)}
    if isinstance(annotation, type) and issubclass(annotation, faust.Record):
        return ref(annotation.__name__)
    if annotation in PLAIN:
        return dict(PLAIN[annotation])
    return ref(BY_TYPE[annotation])


def nested(cls: type[faust.Record]) -> Iterator[type[faust.Record]]:
    """`cls` and every record it holds, depth first."""
    yield cls
    for annotation in cls._options.fields.values():
        for inner in (annotation, *get_args(annotation)):
            if isinstance(inner, type) and issubclass(inner, faust.Record):
                yield from nested(inner)


def definitions(records: tuple[type[faust.Record], ...], ref: Ref) -> dict[str, JSON]:
    """The schemas of `records`, of the records they hold and of every kind of value, by name."""
    found = {cls.__name__: cls for top in records for cls in nested(top)}
    return {**{name: record_schema(cls, ref) for name, cls in found.items()}, **kinds()}


def variants(records: tuple[type[faust.Record], ...], ref: Ref) -> JSON:
    """One record, or exactly one of several: each excludes the fields only the others have."""
    if len(records) == 1:
        return ref(records[0].__name__)
    choices = []
    for cls in records:
        theirs = {n for other in records if other is not cls for n in other._options.fields}
        extra = sorted(theirs - set(cls._options.fields))
        absent = [{"required": [n]} for n in extra]
        excluded = {"not": absent[0] if len(absent) == 1 else {"anyOf": absent}} if extra else {}
        choices.append({**ref(cls.__name__), **excluded})
    return {"oneOf": choices}


def topic_schema(topic: Topic) -> JSON:
    """The schema of every message value on `topic`, self-contained (`$defs`)."""
    defs = definitions(topic.records, in_defs)
    return {
        "$schema": DIALECT,
        "title": topic.name,
        "description": f"{topic.summary} Key: {topic.key}",
        **variants(topic.records, in_defs),
        "$defs": {name: defs[name] for name in sorted(used(variants(topic.records, in_defs), defs))},
    }


def used(schema: Any, defs: dict[str, JSON]) -> set[str]:
    """The names in `defs` that `schema` refers to, directly or through each other."""
    names: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            target = node.get("$ref", "").rpartition("/")[2]
            if target and target not in names:
                names.add(target)
                pending.append(defs[target])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return names
