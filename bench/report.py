"""The bench's one table (Markdown, for the terminal and the README) and its JSON document."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bench.variants import Result

#: The latency variants (the others measure throughput).
LATENCY = ("rawlat", "latency")

#: (name, figure, comparison, bound): the targets of issue 15.
TARGETS = [
    ("full pipeline vs raw aiokafka, to the final topics", "full_vs_raw", ">=", 0.5),
    ("full pipeline vs raw aiokafka, every payout settled", "settled_vs_raw", ">=", 0.5),
    ("worker p99 / raw chain p99 at 1,000 orders/s", "p99_vs_raw", "<=", 1.5),
    ("p99 latency at 1,000 orders/s (ms)", "p99_ms", "<", 50.0),
    ("peak RSS of a worker (MB)", "peak_rss_mb", "<", 200.0),
]


def figures(results: dict[str, Result]) -> dict[str, float | None]:
    """The ratios and headline numbers the targets are judged on."""
    rate = {key: result.per_s for key, result in results.items() if key not in LATENCY}

    def _p99(key: str) -> float | None:
        return results[key].latency_ms.get("p99") if key in results else None

    def ratio(a: str, b: str) -> float | None:
        return rate[a] / rate[b] if a in rate and b in rate else None

    workers = [r.peak_rss_mb or 0.0 for k, r in results.items() if k in ("hop", "full", "full2", "latency")]
    settled = results["full"].settled_per_s if "full" in results else None
    return {
        "hop_vs_raw": ratio("hop", "raw"),
        "full_vs_raw": ratio("full", "raw"),
        "settled_vs_raw": settled / rate["raw"] if settled and "raw" in rate else None,
        "full_vs_naive": ratio("full", "naive"),
        "two_workers_vs_one": ratio("full2", "full"),
        "p99_ms": _p99("latency"),
        "p99_vs_raw": (worker / raw if (worker := _p99("latency")) and (raw := _p99("rawlat")) else None),
        "peak_rss_mb": max(workers, default=None),
    }


def table(results: dict[str, Result]) -> str:
    """Every variant with its rate and ratio to the raw baseline, then the targets."""
    raw = results["raw"].per_s
    lines = [
        "| variant | orders | seconds | orders/s | vs raw aiokafka | every payout settled, orders/s (vs raw) "
        "| CPU µs per order | peak RSS MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, result in results.items():
        if key in LATENCY:
            continue
        rss = f"{result.peak_rss_mb:.0f}" if result.peak_rss_mb else "-"
        settled = result.settled_per_s
        both = f"{settled:,.0f} ({settled / raw:.2f})" if settled else "-"
        lines.append(
            f"| {result.label} | {result.orders:,} | {result.seconds:.2f} | {result.per_s:,.0f} "
            f"| {result.per_s / raw:.2f} | {both} | {_fmt(result.cpu_us_per_order, 0)} | {rss} |"
        )
    lines += [
        "",
        "| latency, order created -> read from payouts-approved | p50 ms | p99 ms | max ms "
        "| p99 of each 5 s, ms | CPU, % of a core | waited for a core, % | broker CPU, % | machine busy, % |",
        "|---|--:|--:|--:|---|--:|--:|--:|--:|",
    ]
    for key in LATENCY:
        lat, ms = results[key], results[key].latency_ms
        series = ", ".join(f"{p:,.0f}" for p in lat.p99_by_5s)
        lines.append(
            f"| {lat.label} | {ms.get('p50')} | {ms.get('p99')} | {ms.get('max')} | {series} "
            f"| {lat.cpu_percent or 0:.0f} | {lat.cpu_wait_percent or 0:.0f} "
            f"| {_fmt(lat.broker_cpu_percent, 0)} | {lat.machine_busy_percent or 0:.0f} |"
        )
    lines += _hops([results[key] for key in LATENCY if key in results])
    for key in LATENCY:
        if lags := results[key].lag_at_end:
            each = ", ".join(f"{stage} {lag:,}" for stage, lag in lags.items())
            lines += ["", f"{results[key].label}: each stage's lag when the load ended, records: {each}"]
    values = figures(results)
    lines += [
        "",
        f"worker p99 / raw aiokafka p99 at the same rate: {_fmt(values['p99_vs_raw'])}",
        "",
        "| target | measured | goal | met |",
        "|---|--:|--:|:-:|",
    ]
    for name, key, op, bound in TARGETS:
        value = values[key]
        met = value is not None and {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
        lines.append(f"| {name} | {_fmt(value)} | {op} {bound:g} | {'yes' if met else 'NO'} |")
    lines.append(
        f"| 2 worker processes vs 1 (full pipeline) | {_fmt(values['two_workers_vs_one'])} | - | - |"
    )
    return "\n".join(lines)


def document(results: dict[str, Result], command: str, broker: str, tables: str) -> dict[str, Any]:
    """The same figures as JSON, with enough context to compare runs over time."""
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "broker": broker,
        "tables": tables,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "results": {key: asdict(result) for key, result in results.items()},
        "figures": figures(results),
    }


def _hops(runs: list[Result]) -> list[str]:
    """Where the latency comes from: each part of the way, p50 / p99 ms, per latency run."""
    parts = list(dict.fromkeys(part for run in runs for part in run.hops_ms))
    if not parts:
        return []
    header = "| part of the way, p50 / p99 ms | " + " | ".join(parts) + " |"
    lines = ["", header, "|---" + "|--:" * len(parts) + "|"]
    for run in runs:
        hops = run.hops_ms
        cells = [f"{hops[p]['p50']} / {hops[p]['p99']}" if p in hops else "-" for p in parts]
        lines.append(f"| {run.label} | " + " | ".join(cells) + " |")
    return lines


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
