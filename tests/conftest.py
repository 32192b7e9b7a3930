"""Fixtures shared by every layer: isolated settings and a guard against leaked tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from worker.settings import Settings

#: Every variable the settings read; tests clear them so the developer's shell cannot leak in.
_VARIABLES = [name.upper() for name in Settings.model_fields] + ["EMBEDDED_BROKER", "ENV_FILE"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from keyword overrides only: no environment, no env files."""

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]

    return make


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running behind it (as faust's own suite does)."""
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not current]
    if leaked:  # give cancelled tasks one chance to finish before judging
        await asyncio.sleep(0)
        leaked = [t for t in leaked if not t.done()]
    assert not leaked, f"test left tasks running: {leaked}"
