"""Summarise a py-spy raw profile (`python -m bench --profile DIR`): where the time goes.

python -m bench.flame DIR/worker0.txt [--top 25]
python -m bench.flame DIR/worker0.txt --stages     # the same samples by stage and by runtime part
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^)]*?)(?::\d+)?\)$")


def load(path: Path) -> list[tuple[list[str], int]]:
    """(frames root first, samples) per collapsed stack."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "wt-perf/", "lib/python3.11/"):
        file = file.split(marker)[-1]
    return f"{match['func']} ({file})"


def summary(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        names = [short(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    lines = [f"{total} samples", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total %  function"]
    lines += [f"{100 * n / total:5.1f}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


#: (part, a frame that puts a sample there), first match wins: a stage's own code, then the engines and
#: clients the stages share. A stage's code is found by its handler's qualified name (py-spy gives it).
PARTS: list[tuple[str, str]] = [
    ("start-up (imports)", "_find_and_load"),
    ("Faust's consumer thread (fetching for the stream stages, changelogs)", "WorkerThread.run"),
    ("stage orders-to-payouts: decode, fee, encode", "orders_to_payouts.<locals>"),
    ("stage screening: handle", "screening.<locals>"),
    ("stage settlement: handle, ledger writes", "settlement.<locals>"),
    ("stage seller-history: handle, table writes", "seller_history.<locals>"),
    ("stages review-*: handle", "intake.<locals>"),
    ("stages review-*: handle", "hold.<locals>"),
    ("stages review-*: handle", "decisions.<locals>"),
    ("decoding payouts (screening, in the batch engine)", "BatchAgent;decode_payout"),
    ("decoding payouts (settlement, seller-history, review-intake)", "StreamEngine.handle;decode_payout"),
    ("batch engine: fetch, publish, commit", "BatchAgent"),
    ("stream engine: batching, acks", "StreamEngine.handle"),
    ("Faust's streams and fetch loop (per event)", "faust/streams.py"),
    ("Faust's streams and fetch loop (per event)", "_drain_messages"),
    ("Faust's producer buffer (table writes, one message at a time)", "ProducerBuffer"),
    ("aiokafka producer (produce requests)", "producer/sender.py"),
    ("aiokafka connections (socket reads and writes)", "aiokafka/conn.py"),
    ("web, metrics, timers", "aiohttp"),
    ("web, metrics, timers", "prometheus_client"),
]


def part_of(frames: list[str]) -> str:
    """Which part of the worker a sample (its frames, root first) belongs to."""
    chain = ";".join(frames)
    for part, marker in PARTS:
        if ";" in marker:
            outer, inner = marker.split(";")
            if outer in chain and inner in chain.split(outer, 1)[1]:
                return part
        elif marker in chain:
            return part
    return "event loop and other (uvloop's own work included)"


def stages(stacks: list[tuple[list[str], int]], seconds: float | None) -> str:
    """Samples by part, as a share and, with `seconds` of profile, as CPU ms per second."""
    total = sum(n for _, n in stacks) or 1
    parts: Counter[str] = Counter()
    for frames, n in stacks:
        parts[part_of([short(f) for f in frames])] += n
    lines = ["| part | share of samples |", "|---|--:|"]
    lines += [f"| {part} | {100 * n / total:.1f}% |" for part, n in parts.most_common()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flame")
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--stages", action="store_true", help="by stage and runtime part")
    args = parser.parse_args()
    stacks = load(args.profile)
    print(stages(stacks, None) if args.stages else summary(stacks, args.top))


if __name__ == "__main__":
    main()
