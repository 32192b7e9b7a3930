"""Faust's Prometheus samples, from the worker's monitor as from Faust's own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.transport.consumer import ConsumerMessage
from faust.types import TP
from prometheus_client.registry import CollectorRegistry

from worker.main import build
from worker.runtime.metrics import LabelledOnce
from worker.settings import Settings

TPS = [TP("payouts", 0), TP("payouts", 1), TP("orders", 0)]


async def _samples(
    monitor_type: type[PrometheusMonitor],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What a monitor exports after messages, events, table operations and sends, a rebalance's clearing
    of the topics' metrics, and more of each."""
    registry = CollectorRegistry()
    monitor = monitor_type(metrics=FaustMetrics.create(registry, "faust"))
    app = faust.App("metrics-test")
    streams = [app.topic("payouts").stream(), app.topic("orders").stream()]
    for stream in streams:
        stream.task_owner = asyncio.current_task()  # an agent's task, as Faust's monitor expects
    table = app.Table("ledger")
    for round_ in range(2):
        for n, tp in enumerate(TPS * 3):
            message = ConsumerMessage(tp.topic, tp.partition, n, 0.0, 0, None, b"k", b"v", None)
            monitor.on_message_in(tp, n, message)
            state = monitor.on_stream_event_in(tp, n, streams[n % 2], None)  # type: ignore[arg-type]
            monitor.on_stream_event_out(tp, n, streams[n % 2], None, state)  # type: ignore[arg-type]
            monitor.track_tp_end_offset(tp, n + 10)
            monitor.on_table_get(table, b"k")
            monitor.on_table_set(table, b"k", b"v")
            if n % 3 == 0:
                monitor.on_table_del(table, b"k")
            monitor.on_send_initiated(None, f"out-{n % 2}", None, 1, 1)  # type: ignore[arg-type]
        if round_ == 0:
            monitor._clear_partition_related_metrics()  # at a rebalance
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith(("_created", "_bucket", "_sum", "_count"))
    }


async def test_the_worker_exports_the_samples_fausts_own_monitor_exports() -> None:
    faust_own: dict[Any, float] = await _samples(PrometheusMonitor)
    assert faust_own == await _samples(LabelledOnce)
    since_the_clear = faust_own[("faust_messages_received_per_topic_total", (("topic", "payouts"),))]
    assert since_the_clear == 6
    table_reads = (
        "faust_table_operations_total",
        (("operation", "keys_retrieved"), ("table", "table.ledger")),
    )
    assert faust_own[table_reads] == 18


def test_the_worker_runs_that_monitor(make_settings: Callable[..., Settings]) -> None:
    pipeline = build(make_settings().with_embedded_broker("127.0.0.1:1"))  # built, not started
    assert type(pipeline.app.monitor) is LabelledOnce
