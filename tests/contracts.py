"""The committed topic contracts (`docs/contracts/`) as validators, and schema failures as reason codes.

Patterns are matched as ECMA-262 reads them, the dialect JSON Schema names: `$` is the end of the
string (Python's `re` also lets it match before a final newline). `format` is checked (date-time).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, ValidationError, validators

from worker.reasons import Reason

CONTRACTS = Path(__file__).resolve().parent.parent / "docs" / "contracts"


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not re.search(_ecma(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _ecma(pattern: str) -> str:
    return pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern


Validator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@functools.cache
def validator(topic: str) -> Any:
    """A validator for the values of `topic` (its name without prefix), from its committed schema."""
    schema = orjson.loads((CONTRACTS / f"{topic}.schema.json").read_bytes())
    return Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(topic: str, value: Any) -> list[ValidationError]:
    """Every way `value` breaks the schema of `topic`."""
    return list(validator(topic).iter_errors(value))


def reason(error: ValidationError) -> Reason | None:
    """The reason code the worker gives for what `error` found, where the schema says which."""
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    if title in Reason.__members__.values():
        return Reason(title)
    if error.validator == "required" or (error.validator == "type" and error.instance is None):
        return Reason.MISSING_FIELD
    if error.validator == "type":
        return Reason.NOT_AN_OBJECT if not error.path else Reason.WRONG_TYPE
    if error.validator == "format":
        return Reason.INVALID_TIMESTAMP
    if error.validator == "enum" and list(error.path)[-1:] == ["decision"]:
        return Reason.UNKNOWN_DECISION
    return Reason.WRONG_TYPE if error.validator == "minimum" else None


def first_reason(topic: str, value: Any) -> Reason | None:
    """The reason the codec would give first (the decoders check in `Reason`'s order), or None."""
    found = [reason(error) for error in errors(topic, value)]
    order = list(Reason)
    return min((r for r in found if r is not None), key=order.index, default=None)


def topic_of(full_name: str, prefix: str) -> str:
    """A topic's contract name: its full name without TOPIC_PREFIX."""
    return full_name.removeprefix(prefix)


def assert_valid(topic: str, values: list[Any]) -> None:
    """Every value validates against `topic`'s schema; else the first failures, to read."""
    bad = [(value, [e.message for e in errors(topic, value)]) for value in values if errors(topic, value)]
    assert not bad, f"{len(bad)} of {len(values)} records on {topic} break its schema: {bad[:3]!r:.3000}"
