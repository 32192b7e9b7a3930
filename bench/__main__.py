"""`python -m bench`: see the package docstring."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import orjson

from bench import kafka, report, variants
from bench.orders import orders
from bench.procs import free_port, table_store
from bench.progress import Progress
from bench.variants import Result, Run
from worker.broker import embedded
from worker.settings import Settings

RESULTS = Path(__file__).parent / "results" / "latest.json"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000, help="orders per throughput run")
    parser.add_argument("--naive-orders", type=int, help="orders for the naive Faust run (default: --orders)")
    parser.add_argument("--rate", type=float, default=1000.0, help="orders/s of the latency run")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the latency run")
    parser.add_argument("--smoke", action="store_true", help="2,000 orders, a 3 s latency run")
    parser.add_argument("--only", help="comma-separated variants to run: " + ", ".join(VARIANTS))
    parser.add_argument("--profile", type=Path, help="sample every process with py-spy into this directory")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the figures ({RESULTS})")
    args = parser.parse_args(argv)
    if args.smoke:
        args.orders, args.seconds, args.rate = min(args.orders, 2000), min(args.seconds, 3.0), 200.0
    args.naive_orders = min(args.naive_orders or args.orders, args.orders)
    if args.profile and not Path(sys.executable).with_name("py-spy").exists():
        parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
    return args


VARIANTS: dict[str, Callable[[Run, argparse.Namespace], Awaitable[Result]]] = {
    "raw": lambda run, args: variants.raw_aiokafka(run),
    "hop": lambda run, args: variants.worker_hop(run),
    "full": lambda run, args: variants.worker_pipeline(run, 1),
    "full2": lambda run, args: variants.worker_pipeline(run, 2),
    "naive": lambda run, args: variants.naive_faust(run, args.naive_orders),
    "rawlat": lambda run, args: variants.raw_latency(run, args.rate, args.seconds),
    "latency": lambda run, args: variants.latency(run, args.rate, args.seconds),
}


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Result]:
    """Run the chosen variants in turn, each on a broker of its own (see `broker`)."""
    progress = Progress()
    progress.step(f"generating {args.orders:,} orders")
    generated = orders(args.orders)
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    results = {}
    for name in (name for name in VARIANTS if name in chosen):
        with broker(workdir / name) as (bootstrap, pid):
            run = Run(bootstrap, workdir / name, generated, progress, args.profile, pid)
            held = await kafka.topic_names(bootstrap)
            results[name] = await VARIANTS[name](run, args)
            results[name].topics_at_start = held
    return results


def broker_name() -> str:
    """The broker the bench runs on, for the report."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    if not settings.embedded_broker:
        return f"cluster {settings.kafka_bootstrap_servers}"
    return f"embedded {settings.embedded_broker_name}, started empty for each variant"


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[tuple[str, int | None]]:
    """(bootstrap servers, the broker's process id): KAFKA_BOOTSTRAP_SERVERS if set (no process), else
    the embedded broker EMBEDDED_BROKER names, started empty in `workdir` and stopped after the variant.

    A broker of its own for each variant: noida-db rewrites everything it holds into one file again and
    again, so its CPU grows with what the variants before wrote (measured: 41% of a core after 80,000
    messages, on a machine of 2 cores that the variant, the bench and the broker share)."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    workdir.mkdir(parents=True, exist_ok=True)
    if not settings.embedded_broker:
        yield settings.kafka_bootstrap_servers, None
        return
    # The variants' workers see an external cluster: they are told its quirks, as an operator would.
    os.environ["BROKER_QUIRKS"] = settings.broker_quirks
    with embedded(settings.embedded_broker_name, free_port(), workdir) as running:
        yield running.bootstrap_servers, running.pid


def main(argv: list[str]) -> None:
    args = parse(argv)
    name = broker_name()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        results = asyncio.run(measure(args, Path(tmp)))
    command = shlex.join(["python", "-m", "bench", *argv])
    tables = table_store()
    table = report.table(results) if len(results) == len(VARIANTS) else results
    print(f"\n`{command}` on {name}, tables on {tables}\n\n{table}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = report.document(results, command, name, tables)
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"\nfigures: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
