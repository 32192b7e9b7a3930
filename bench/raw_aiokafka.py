"""The baseline: the orders -> payouts hop written straight on aiokafka, as issue 5 measured it.

consumer.getmany -> orjson decode -> fee -> orjson encode -> producer.send (linger 5 ms), with no
framework and no validation; sends are not awaited one by one and offsets are auto-committed, so it
is an upper bound rather than a pipeline with the worker's guarantees.

python -m bench.raw_aiokafka BOOTSTRAP SOURCE_TOPIC SINK_TOPIC GROUP_ID
"""

from __future__ import annotations

import asyncio
import signal
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

RATE, FIXED, CENT = Decimal("0.029"), Decimal("0.30"), Decimal("0.01")


def with_fee(order: dict[str, Any]) -> dict[str, Any]:
    """`order` with its fee and net added."""
    amount = Decimal(order["amount"])
    fee = (RATE * amount + FIXED).quantize(CENT, rounding=ROUND_HALF_EVEN)
    order["fee"], order["net"] = str(fee), str(amount - fee)
    return order


def payout(raw: bytes) -> bytes:
    """Decode an order, add its fee and net, encode it again."""
    return orjson.dumps(with_fee(orjson.loads(raw)))


async def run(bootstrap: str, source: str, sink: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    await producer.start()
    await consumer.start()
    try:
        while not stopping.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    await producer.send(sink, payout(record.value), key=record.key)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    uvloop.run(run(*sys.argv[1:5]))
