"""The contract files, as text: `<topic>.schema.json` for every topic and `asyncapi.json`."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from worker.contracts.asyncapi import document
from worker.contracts.flow import TOPICS
from worker.contracts.schemas import topic_schema

ASYNCAPI = "asyncapi.json"
SUFFIX = ".schema.json"


def rendered(version: str | None = None) -> dict[str, str]:
    """Every contract file's name and text; the same code always gives the same bytes."""
    files = {f"{topic.name}{SUFFIX}": _json(topic_schema(topic)) for topic in TOPICS}
    files[ASYNCAPI] = _json(document(version or metadata.version("streamline")))
    return files


def write(directory: Path) -> list[str]:
    """Write every contract file to `directory`; remove schema files of topics that are gone."""
    directory.mkdir(parents=True, exist_ok=True)
    files = rendered()
    for stale in directory.glob(f"*{SUFFIX}"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return sorted(files)


def _json(value: Any) -> str:
    # Keys keep the order the code builds them in (a record's fields in their order), which is stable.
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
