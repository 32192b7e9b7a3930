"""A consumer whose generation went stale rejoins its group under its own member id (worker/runtime/kafka.py).

aiokafka's own behaviour, a new id, leaves the old one in the group until its session expires, and on
noida-db forever (test_broker_quirks.py): this is the group stall two workers met after a rebalance.
"""

from __future__ import annotations

import asyncio

from tests.integration.test_broker_quirks import create
from tests.kafka import group_members
from worker.runtime.kafka import rejoin_as_itself, stop_consumer


async def test_a_member_reset_by_a_stale_generation_rejoins_as_itself_and_the_group_shares_again(
    bootstrap, unique
) -> None:
    topic = f"{unique}-members"
    await create(bootstrap, topic, partitions=4)
    members = group_members(bootstrap, topic, f"{unique}-g")
    try:
        for member in members:
            await member.start()
            rejoin_as_itself(member)

        async def shared() -> None:  # in a generation (a reset one is -1), two partitions each
            while not all(m._coordinator.generation >= 0 and len(m.assignment()) == 2 for m in members):
                await asyncio.gather(*(m.getmany(timeout_ms=100) for m in members))

        await asyncio.wait_for(shared(), 60)  # (Tansu: each join waits half the session timeout)
        member_id = members[0]._coordinator.member_id
        members[0]._coordinator.reset_generation()  # as aiokafka does on ILLEGAL_GENERATION
        assert members[0]._coordinator.generation == -1

        await asyncio.wait_for(shared(), 60)
        assert members[0]._coordinator.member_id == member_id
    finally:
        for member in members:
            await stop_consumer(member, 5)
