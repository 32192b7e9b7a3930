"""The latency baseline: the worker's two hot hops written straight on aiokafka, in one process.

orders -> payouts (fee and net) -> payouts-approved | payouts-review (by the review threshold), each
hop a consumer `getmany` -> orjson -> producer `send` (not awaited per record, linger 0), with the
same fetch wait as the worker's batch agents. No validation, no dead letters, no tables: what any
client pays to this broker for the same two hops, measured beside the worker at the same rate.

python -m bench.raw_chain BOOTSTRAP ORDERS PAYOUTS APPROVED REVIEW GROUP_ID
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from decimal import Decimal

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.raw_aiokafka import with_fee
from worker.runtime.batches import FETCH_MAX_WAIT_MS

THRESHOLD = Decimal("1000.00")


async def hop(
    stopping: asyncio.Event,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    route: Callable[[bytes], tuple[str, bytes]],
) -> None:
    """Consume, transform and send until `stopping` is set."""
    while not stopping.is_set():
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                topic, value = route(record.value)
                await producer.send(topic, value, key=record.key)


async def run(bootstrap: str, orders: str, payouts: str, approved: str, review: str, group: str) -> None:
    def consumer(topic: str, name: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{group}-{name}",
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1500,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )

    def to_payout(raw: bytes) -> tuple[str, bytes]:
        value = with_fee(orjson.loads(raw))
        value["order_created_at"] = value["created_at"]
        return payouts, orjson.dumps(value)

    def screened(raw: bytes) -> tuple[str, bytes]:
        return (review if Decimal(orjson.loads(raw)["net"]) > THRESHOLD else approved), raw

    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    first, second = consumer(orders, "payouts"), consumer(payouts, "screening")
    await producer.start()
    await first.start()
    await second.start()
    try:
        await asyncio.gather(
            hop(stopping, first, producer, to_payout), hop(stopping, second, producer, screened)
        )
    finally:
        await first.stop()
        await second.stop()
        await producer.stop()


if __name__ == "__main__":
    uvloop.run(run(*sys.argv[1:7]))
