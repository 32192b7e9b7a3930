"""Messages the streams' queues drop when flow resumes are fetched again, not waited for for ever."""

from __future__ import annotations

import asyncio
import time

from tests.integration.test_pipeline import order
from tests.kafka import produce_many, wait_for_stats

ORDERS = 3000


async def test_messages_a_resume_drops_from_the_streams_queues_are_processed_all_the_same(
    bootstrap, start_pipeline
) -> None:
    # A rebalance's recovery resumes flow more than once, and each resume empties the streams'
    # queues (mode's FlowControlEvent): here a resume comes while messages wait in them.
    pipeline = await start_pipeline()
    app = pipeline.app
    sellers = [f"s-{n % 20}" for n in range(ORDERS)]
    await produce_many(
        bootstrap,
        pipeline.topics.orders.get_topic_name(),
        [(s.encode(), order(f"o-{n}", "10.00", seller=s)) for n, s in enumerate(sellers)],
    )
    dropped, deadline = 0, time.monotonic() + 60
    while not dropped and time.monotonic() < deadline:
        queued = sum(queue.qsize() for queue in app.flow_control._queues)
        if queued:
            app.flow_control.resume()  # no await between: the queued messages are dropped
            dropped = queued
        await asyncio.sleep(0)
    assert dropped, "no message ever waited in a stream's queue"

    stats = await wait_for_stats(app.conf.web_port, lambda s: s["ledger"]["settled"] == ORDERS, timeout=120)
    print(f"\n{dropped} queued messages dropped by a resume; all {ORDERS} settled")
    assert stats["ledger"]["conflicts"] == 0
