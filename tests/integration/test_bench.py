"""`make bench` in smoke mode, so that it cannot rot: it runs end to end and counts every order.

Never a speed: this machine is shared, and the figures are the bench's business, not the test's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.brokers import BROKER, EXTERNAL

ROOT = Path(__file__).parents[2]
VARIANTS = ["raw", "hop", "full", "full2", "naive", "rawlat", "latency"]
#: Two workers in one group can stall for good on noida-db, whose group never expires a member that does
#: not rejoin (test_broker_quirks.py: test_a_member_that_rejoins_under_a_new_id_leaves_no_member_holding_
#: the_group; test_worker_output.py skips there for it). The smoke run leaves the two-process variant out
#: there (seen twice in five CI checks: a worker crashed on an empty assignment, then settling stalled);
#: the Tansu pass runs it.
if BROKER == "noida" and not EXTERNAL:
    VARIANTS.remove("full2")

pytestmark = pytest.mark.slow


def test_the_bench_runs_and_every_order_reaches_its_final_topic(tmp_path: Path) -> None:
    figures = tmp_path / "smoke.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "STOREFRONT_", "TABLE_STORE"))}
    bench = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", ",".join(VARIANTS), "--json", str(figures)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert bench.returncode == 0, bench.stderr[-3000:]
    document = orjson.loads(figures.read_bytes())
    assert document["tables"] == "rocksdb://"  # what production runs
    results = document["results"]
    assert set(results) == set(VARIANTS)
    for name, result in results.items():
        assert result["orders"] > 0, name
        assert result["counted"] == result["orders"], name
    for name in ("rawlat", "latency"):  # each latency run timed every part of the way of its payouts
        hops, approved = results[name]["hops_ms"], results[name]["latency_ms"]["count"]
        assert set(hops) == {"order -> payout", "payout -> approved", "approved -> read"}, name
        assert all(0 <= part["p50"] <= part["p99"] for part in hops.values()), hops
        assert all(part["count"] >= 0.95 * approved for part in hops.values()), (hops, approved)
    if not EXTERNAL:  # each variant on a broker of its own, started empty (noida-db's CPU grows with data)
        assert all(result["topics_at_start"] == [] for result in results.values()), results
    for name in ("rawlat", "latency"):  # how much the measured process waited for a core, the broker worked
        assert results[name]["cpu_wait_percent"] >= 0 and 0 < results[name]["machine_busy_percent"] <= 100
        assert EXTERNAL or results[name]["broker_cpu_percent"] > 0
    # the worker said what each stage still had to handle when the steady load ended
    assert {"settlement", "orders-to-payouts"} <= set(results["latency"]["lag_at_end"])
    for name in {"full", "full2"} & set(VARIANTS):  # and every approved payout was settled in the ledger
        assert results[name]["settled_seconds"] >= results[name]["seconds"] > 0, name
    # the CPU each throughput run used per order: the whole pipeline's is more than one raw hop's
    per_order = {name: results[name]["cpu_us_per_order"] for name in ("raw", "hop", "full", "naive")}
    assert 0 < per_order["raw"] < per_order["full"], per_order
    assert all(value > 0 for value in per_order.values()), per_order
    if "full2" in VARIANTS:  # the report's table needs every variant (the Tansu pass)
        assert "| worker, full pipeline, 1 process |" in bench.stdout
        assert "worker p99 / raw aiokafka p99" in bench.stdout
        assert "| part of the way, p50 / p99 ms |" in bench.stdout
        assert "each stage's lag when the load ended, records: " in bench.stdout
