"""A real broker for the whole session, and running pipelines with unique names per test.

The broker is the embedded one `EMBEDDED_BROKER` names (noida-db by default, or Tansu), unless
KAFKA_BOOTSTRAP_SERVERS names a cluster to test against (see `tests/brokers.py`).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers import BROKER, EXTERNAL, QUIRKS
from tests.processes import free_port
from worker.broker import embedded
from worker.main import Pipeline, build
from worker.settings import Settings

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker's address; an embedded broker lives as long as the test session."""
    if EXTERNAL:
        yield EXTERNAL
        return
    with embedded(BROKER, free_port(), tmp_path_factory.mktemp("broker")) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(autouse=True)
def _broker_quirks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes that a test starts talk to this session's broker: they are told its quirks."""
    monkeypatch.setenv("BROKER_QUIRKS", QUIRKS)
    monkeypatch.setenv("EMBEDDED_BROKER", BROKER)


@pytest.fixture
def unique() -> str:
    """A name no other test uses: for app ids and topic prefixes."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pipeline_settings(bootstrap: str, unique: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a pipeline of this test: its own app id, topics, web port and data dir."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "app_id": unique,
            "topic_prefix": f"{unique}-",
            "topic_partitions": 3,
            "web_port": free_port(),
            "data_dir": tmp_path / f"data-{uuid.uuid4().hex[:6]}",
            "storefront_orders_per_second": 0,
            "kafka_session_timeout_s": 6,
        }
        values.update(overrides)
        if EXTERNAL:
            return Settings(_env_file=None, kafka_bootstrap_servers=bootstrap, **values)  # type: ignore[call-arg]
        local = Settings(_env_file=None, embedded_broker_name=BROKER, **values)  # type: ignore[call-arg]
        return local.with_embedded_broker(bootstrap)

    return make


@pytest.fixture
async def start_pipeline(
    pipeline_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[Pipeline]]]:
    """Start pipelines in this process (as `faust worker` would); all are stopped after the test."""
    started: list[Pipeline] = []

    async def start(**overrides: Any) -> Pipeline:
        pipeline = build(pipeline_settings(**overrides))
        started.append(pipeline)
        await pipeline.app.start()
        return pipeline

    yield start
    for pipeline in reversed(started):
        await pipeline.app.stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
