"""A real broker for the whole session, and running pipelines with unique names per test.

The broker is the embedded Tansu unless KAFKA_BOOTSTRAP_SERVERS names a cluster to test against.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.broker import EmbeddedBroker, find_tansu, free_port
from worker.main import Pipeline, build
from worker.settings import Settings

pytestmark = pytest.mark.integration

_EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker's address; an embedded broker lives as long as the test session."""
    if _EXTERNAL:
        yield _EXTERNAL
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(find_tansu(), free_port(), log_path=log) as broker:
        yield broker.bootstrap_servers


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
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        return (
            settings.with_embedded_broker(bootstrap)
            if not _EXTERNAL
            else settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
        )

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
