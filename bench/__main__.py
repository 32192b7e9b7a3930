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

from bench import report, variants
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


async def measure(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict[str, Result]:
    progress = Progress()
    progress.step(f"generating {args.orders:,} orders")
    run = Run(bootstrap, workdir, orders(args.orders), progress, args.profile)
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    return {name: await VARIANTS[name](run, args) for name in VARIANTS if name in chosen}


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, a name for the report): KAFKA_BOOTSTRAP_SERVERS if set, else the embedded
    broker EMBEDDED_BROKER names, started for the bench and stopped after it."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    if not settings.embedded_broker:
        yield settings.kafka_bootstrap_servers, f"cluster {settings.kafka_bootstrap_servers}"
        return
    # The variants' workers see an external cluster: they are told its quirks, as an operator would.
    os.environ["BROKER_QUIRKS"] = settings.broker_quirks
    with embedded(settings.embedded_broker_name, free_port(), workdir) as running:
        yield running.bootstrap_servers, f"embedded {running.name}"


def main(argv: list[str]) -> None:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, broker(Path(tmp)) as (bootstrap, name):
        results = asyncio.run(measure(args, bootstrap, Path(tmp)))
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
