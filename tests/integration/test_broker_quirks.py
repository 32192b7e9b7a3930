"""What each embedded broker gets wrong, shown with plain clients and no worker code.

Every test asks both brokers for what Apache Kafka does. Where one of them does otherwise, its case is
an expected failure (strict: the day it is fixed, the test fails and the workaround can go) and the
tests the bug affects name the case here as their reason.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import InvalidSessionTimeoutError
from aiokafka.protocol.group import JoinGroupRequest

from tests.kafka import group_members
from tests.processes import free_port
from worker.broker import BrokerProcess, embedded
from worker.runtime.kafka import stop_consumer

pytestmark = pytest.mark.slow


def on(name: str, tansu_bug: str = "", noida_bug: str = "") -> pytest.ParameterSet:
    bug = {"tansu": tansu_bug, "noida": noida_bug}[name]
    marks = [pytest.mark.xfail(strict=True, reason=f"{name} bug: {bug}")] if bug else []
    return pytest.param(name, marks=marks, id=name)


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of the parametrized kind, of this test alone."""
    with embedded(request.param, free_port(), tmp_path) as running:
        yield running


async def create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce_batches(bootstrap: str, topic: str, sizes: list[int]) -> None:
    """One produce request (one record batch) of each size, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for size in sizes:
            batch = producer.create_batch()
            for n in range(size):
                batch.append(key=None, value=b"v%d" % n, timestamp=None)
            batch.close()
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


TANSU_END_OFFSETS = "ListOffsets(latest) answers the base offset of the partition's last record batch"


@pytest.mark.parametrize("broker", [on("noida"), on("tansu", tansu_bug=TANSU_END_OFFSETS)], indirect=True)
async def test_list_offsets_answers_the_end_of_the_partition(broker: BrokerProcess) -> None:
    bootstrap = broker.bootstrap_servers
    await create(bootstrap, "ends")
    await produce_batches(bootstrap, "ends", [5, 7])  # the end is offset 12
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition("ends", 0)
        assert await consumer.end_offsets([tp]) == {tp: 12}
    finally:
        await consumer.stop()


TANSU_JOIN = "a consumer group's join waits about half the session timeout, whatever the group's state"


@pytest.mark.parametrize("broker", [on("noida"), on("tansu", tansu_bug=TANSU_JOIN)], indirect=True)
async def test_a_lone_consumer_joins_a_new_group_within_3s_with_a_30s_session(broker: BrokerProcess) -> None:
    # Apache Kafka delays a new group's first join by group.initial.rebalance.delay.ms (3 s by default),
    # whatever the session timeout.
    await create(broker.bootstrap_servers, "joins")
    consumer = AIOKafkaConsumer(
        "joins", bootstrap_servers=broker.bootstrap_servers, group_id="g", session_timeout_ms=30_000
    )
    started = time.monotonic()
    await consumer.start()
    try:
        while not consumer.assignment():
            assert time.monotonic() - started < 20, "never joined"
            await consumer.getmany(timeout_ms=100)
        joined = time.monotonic() - started
    finally:
        await consumer.stop()
    print(f"\n{broker.name}: joined in {joined:.1f}s")
    assert joined < 3.5


TANSU_TRANSACTIONS = "no transactions: InitProducerId fails, so not even an idempotent producer starts"


@pytest.mark.parametrize("broker", [on("noida"), on("tansu", tansu_bug=TANSU_TRANSACTIONS)], indirect=True)
async def test_transactions_commit_offsets_and_hide_aborted_records(broker: BrokerProcess) -> None:
    bootstrap = broker.bootstrap_servers
    await create(bootstrap, "tx-in")
    await create(bootstrap, "tx-out")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="tx-1")
    try:
        await asyncio.wait_for(producer.start(), 20)
        async with producer.transaction():
            await producer.send_and_wait("tx-out", b"committed")
            await producer.send_offsets_to_transaction({TopicPartition("tx-in", 0): 7}, "tx-group")
        await producer.begin_transaction()
        await producer.send_and_wait("tx-out", b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait("tx-out", b"after")
    finally:
        await producer.stop()
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id="tx-group", isolation_level="read_committed"
    )
    await reader.start()
    try:
        tp_in, tp_out = TopicPartition("tx-in", 0), TopicPartition("tx-out", 0)
        assert await reader.committed(tp_in) == 7
        reader.assign([tp_out])
        await reader.seek_to_beginning(tp_out)
        values = [r.value for r in (await reader.getmany(tp_out, timeout_ms=3000)).get(tp_out, [])]
    finally:
        await reader.stop()
    assert values == [b"committed", b"after"]


TANSU_KCAT = "Debian's kcat (librdkafka 2.0.2) fails: `ApiVersionRequest failed: Local: Read underflow`"
KCAT = shutil.which("kcat")


@pytest.mark.skipif(KCAT is None, reason="needs Debian's kcat (apt-get install kcat; .ci/run installs it)")
@pytest.mark.parametrize("broker", [on("noida"), on("tansu", tansu_bug=TANSU_KCAT)], indirect=True)
def test_debians_kcat_lists_the_brokers_metadata(broker: BrokerProcess) -> None:
    assert KCAT is not None
    listed = subprocess.run(
        [KCAT, "-b", broker.bootstrap_servers, "-L", "-m", "5"], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0, listed.stderr
    assert f"broker 1 at {broker.bootstrap_servers}" in listed.stdout or "1 brokers" in listed.stdout


TANSU_SESSION_FLOOR = "accepts a session timeout below Apache Kafka's group.min.session.timeout.ms (6 s)"


@pytest.mark.parametrize("broker", [on("noida"), on("tansu", tansu_bug=TANSU_SESSION_FLOOR)], indirect=True)
async def test_a_session_timeout_below_6s_is_refused_as_apache_kafka_refuses_it(broker: BrokerProcess):
    client = AIOKafkaClient(bootstrap_servers=broker.bootstrap_servers)
    await client.bootstrap()
    try:
        coordinator = await client.coordinator_lookup(CoordinationType.GROUP, "g")
        join = JoinGroupRequest("g", 3000, 3000, "", "", "consumer", [("range", b"")])
        answer = await client.send(coordinator, join)
    finally:
        await client.close()
    assert answer.error_code == InvalidSessionTimeoutError.errno


MEMBER = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer
async def main():
    consumer = AIOKafkaConsumer(
        "members", bootstrap_servers=sys.argv[1], group_id="g", session_timeout_ms=6000,
        heartbeat_interval_ms=1000, enable_auto_commit=False,
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=100)
    print("assigned", flush=True)
    while True:
        await consumer.getmany(timeout_ms=100)
asyncio.run(main())
"""

NOIDA_DEAD_MEMBER = (
    "a member that dies without leaving its group (kill -9) is never expired: its partitions stay "
    "assigned to it, and nobody consumes them"
)
#: For the tests this bug breaks (a worker killed with kill -9).
KILLED_MEMBER_REPRODUCTION = (
    "tests/integration/test_broker_quirks.py::"
    "test_the_partitions_of_a_member_killed_without_leaving_go_to_the_others_after_its_session"
)


@pytest.mark.parametrize("broker", [on("noida", noida_bug=NOIDA_DEAD_MEMBER), on("tansu")], indirect=True)
async def test_the_partitions_of_a_member_killed_without_leaving_go_to_the_others_after_its_session(
    broker: BrokerProcess,
) -> None:
    await create(broker.bootstrap_servers, "members", partitions=4)
    other = subprocess.Popen([sys.executable, "-c", MEMBER, broker.bootstrap_servers], stdout=subprocess.PIPE)
    survivor = AIOKafkaConsumer(
        "members",
        bootstrap_servers=broker.bootstrap_servers,
        group_id="g",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        enable_auto_commit=False,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == b"assigned\n"
        await survivor.start()
        await until_assigned(survivor, lambda n: n == 2, within=30)  # the group has both members

        other.kill()  # kill -9: no LeaveGroup; only its silence tells the coordinator
        await until_assigned(survivor, lambda n: n == 4, within=6 + 15)
    finally:
        other.kill()
        other.wait()
        await survivor.stop()


async def until_assigned(consumer: AIOKafkaConsumer, count: Callable[[int], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not count(len(consumer.assignment())):
        assert time.monotonic() < deadline, f"assigned {sorted(consumer.assignment())} after {within}s"
        await consumer.getmany(timeout_ms=100)


@pytest.mark.parametrize("broker", [on("noida", noida_bug=NOIDA_DEAD_MEMBER), on("tansu")], indirect=True)
async def test_a_member_that_rejoins_under_a_new_id_leaves_no_member_holding_the_group(
    broker: BrokerProcess,
) -> None:
    # What aiokafka does when a commit or heartbeat is answered ILLEGAL_GENERATION: it drops its member
    # id and joins as a new member, abandoning the old one (worker/runtime/kafka.py, rejoin_as_itself).
    await create(broker.bootstrap_servers, "rejoin", partitions=4)
    members = group_members(broker.bootstrap_servers, "rejoin", "g")
    try:
        for member in members:
            await member.start()
        await asyncio.gather(*(until_assigned(m, lambda n: n == 2, within=30) for m in members))

        before = members[1]._coordinator.generation
        members[0]._coordinator.reset_generation()  # the abandoned id is silent from now on

        def shared_again() -> bool:  # a generation after the reset, two partitions each
            return all(m._coordinator.generation > before and len(m.assignment()) == 2 for m in members)

        try:  # (a fetch waits while the group has no assignment: the bound is around it all)
            async with asyncio.timeout(6 + 15):  # the session timeout, and time to rebalance
                while not shared_again():
                    await asyncio.gather(*(m.getmany(timeout_ms=100) for m in members))
        except TimeoutError:
            raise AssertionError("the group did not rebalance around the abandoned member") from None
    finally:
        for member in members:  # leaving waits for the join in progress, if it never ends: not long
            await stop_consumer(member, 5)


NOIDA_LONG_POLL = (
    "a fetch with no data is answered at once, not held for fetch.max.wait.ms: an idle consumer "
    "sends about 3,000 fetches a second (measured), on the CPU the worker shares"
)


@pytest.mark.parametrize("broker", [on("noida", noida_bug=NOIDA_LONG_POLL), on("tansu")], indirect=True)
async def test_a_fetch_with_no_data_is_held_for_the_wait_the_consumer_asks(broker: BrokerProcess) -> None:
    bootstrap = broker.bootstrap_servers
    await create(bootstrap, "idle")
    fetches = 0
    sent = AIOKafkaClient.send

    async def counting(self: AIOKafkaClient, node_id: int, request: object, **options: object) -> object:
        nonlocal fetches
        fetches += type(request).__name__.startswith("FetchRequest")
        return await sent(self, node_id, request, **options)

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=500, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition("idle", 0)])
        await consumer.seek_to_end(TopicPartition("idle", 0))
        AIOKafkaClient.send = counting  # type: ignore[method-assign]
        started = time.monotonic()
        while time.monotonic() - started < 2:
            await consumer.getmany(timeout_ms=500)
    finally:
        AIOKafkaClient.send = sent  # type: ignore[method-assign]
        await consumer.stop()
    # Apache Kafka holds each for 500 ms (4 in 2 s); Tansu for up to half of it.
    assert fetches <= 20, f"{fetches} fetches in 2 s"
