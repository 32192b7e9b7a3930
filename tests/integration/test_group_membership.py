"""A consumer whose generation went stale rejoins its group under its own member id (worker/runtime/kafka.py).

aiokafka's own behaviour, a new id, leaves the old one in the group until its session expires, and on
noida-db forever (test_broker_quirks.py): this is the group stall two workers met after a rebalance.
"""

from __future__ import annotations

import asyncio

from tests.integration.test_broker_quirks import create
from tests.kafka import group_members
from worker.runtime.kafka import accept_empty_assignments, rejoin_as_itself, stop_consumer


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


async def test_a_sync_that_assigns_this_member_no_bytes_leaves_it_with_no_partitions(
    bootstrap, unique
) -> None:
    # A broker answers a member its leader left out with empty assignment bytes; aiokafka could not
    # decode them and the worker crashed ("unpack requires a buffer of 2 bytes", once in CI's bench).
    topic = f"{unique}-empty"
    await create(bootstrap, topic, partitions=2)
    [member] = group_members(bootstrap, topic, f"{unique}-g", count=1)
    try:
        await member.start()
        accept_empty_assignments(member)

        async def assigned() -> None:
            while len(member.assignment()) != 2:
                await member.getmany(timeout_ms=100)

        await asyncio.wait_for(assigned(), 60)
        coordinator = member._coordinator
        # The answer such a sync brings, handed to the consumer as aiokafka's join step hands it over.
        await coordinator._on_join_complete(coordinator.generation, coordinator.member_id, "roundrobin", b"")
        assert member.assignment() == set()
    finally:
        await stop_consumer(member, 5)
