"""Batch agents: hot topics consumed a batch at a time, beside Faust's agents, tables, timers and web.

Faust moves every message through its consumer loop, a channel queue and a stream, with several
tasks and futures per message: that framework work caps an agent at a few thousand messages a
second on one core whatever the agent does (README, Performance). A batch agent's handler instead
gets the records of a fetch (up to `max_records`) and fills an `Outbox`; the `BatchConsumer` sends
the outbox, waits until the broker has confirmed every message, and only then commits the batch's
offsets. A crash in between replays the batch (at least once); each partition's records are handled
and published in order, so one seller's events stay in order.

All batch agents of an app share one aiokafka consumer in their own group, `<app id>-batches`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from faust.types import TopicT
from mode import Service

from worker.app import PipelineApp
from worker.publish import Outbox, Publisher

logger = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
#: A batch agent's body: the records of one partition, in order, and the outbox to publish through.
Handler = Callable[[Sequence[Record], Outbox], None]

#: How long the broker may hold a fetch with no data: bounds the latency a quiet topic adds per hop.
FETCH_MAX_WAIT_MS = 5
#: Records per batch: big enough to amortise a delivery round trip, small enough to keep latency.
MAX_RECORDS = 2000


class BatchAgent:
    """A stage that handles `channel` a batch at a time (where a Faust agent handles one event)."""

    def __init__(self, name: str, channel: TopicT, handler: Handler, publisher: Publisher) -> None:
        self.name, self.channel, self.handler, self.publisher = name, channel, handler, publisher

    def __repr__(self) -> str:
        return f"<BatchAgent {self.name}: {self.channel.get_topic_name()}>"


def batch_agent(
    app: PipelineApp, channel: TopicT, publisher: Publisher, *, name: str
) -> Callable[[Handler], BatchAgent]:
    """Decorate a handler to consume `channel` in batches, like `@app.agent` for a hot topic."""

    def register(handler: Handler) -> BatchAgent:
        agent = BatchAgent(name, channel, handler, publisher)
        _consumer_of(app).agents[channel.get_topic_name()] = agent
        return agent

    return register


def _consumer_of(app: PipelineApp) -> BatchConsumer:
    for service in app.stage_services:
        if isinstance(service, BatchConsumer):
            return service
    consumer = BatchConsumer(app)
    app.start_with_agents(consumer)
    return consumer


class BatchConsumer(Service):
    """Fetches, hands each partition's records to its agent, delivers, then commits."""

    def __init__(self, app: PipelineApp, **kwargs: Any) -> None:
        self.app = app
        self.agents: dict[str, BatchAgent] = {}
        self.max_records = MAX_RECORDS
        self._client: AIOKafkaConsumer | None = None
        self._handling = asyncio.Lock()  # held from a batch's fetch until its commit
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        if self.agents:
            self._client = _kafka_consumer(self.app)
            self._client.subscribe(list(self.agents), listener=_Revoke(self._handling))
            await self._client.start()
            for agent in self.agents.values():  # so /stats counts this agent's events
                self.app.monitor.stream_lookup[agent] = agent.name  # type: ignore[index]

    async def on_stop(self) -> None:
        async with self._handling:  # let the batch in hand finish and commit
            if self._client is not None:
                await self._client.stop()

    @Service.task
    async def _consume(self) -> None:
        client = self._client
        while client is not None and not self.should_stop:
            batch = await client.getmany(timeout_ms=500, max_records=self.max_records)
            async with self._handling:
                assigned = client.assignment()  # a rebalance may have taken partitions since the fetch
                batch = {tp: records for tp, records in batch.items() if records and tp in assigned}
                if batch and not self.should_stop:
                    await self._handle(client, batch)

    async def _handle(self, client: AIOKafkaConsumer, batch: dict[TopicPartition, list[Record]]) -> None:
        outboxes: dict[BatchAgent, Outbox] = {}
        for tp, records in batch.items():
            agent = self.agents[tp.topic]
            agent.handler(records, outboxes.setdefault(agent, Outbox()))
        await asyncio.gather(*(agent.publisher.deliver(outbox) for agent, outbox in outboxes.items()))
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await client.commit(offsets)
        except CommitFailedError as exc:  # the group moved on: the new owner replays these records
            logger.warning("batch commit refused after a rebalance (%s): %s", exc, offsets)
        self._account(batch)

    def _account(self, batch: dict[TopicPartition, list[Record]]) -> None:
        """Faust's monitor counts per message in its own loop; here, per batch."""
        monitor = self.app.monitor
        for tp, records in batch.items():
            count = len(records)
            monitor.messages_received_total += count
            monitor.messages_received_by_topic[tp.topic] += count
            monitor.events_total += count
            monitor.events_by_stream[self.agents[tp.topic].name] += count
            monitor.tp_read_offsets[tp] = records[-1].offset


class _Revoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over only between batches, once the batch in hand is committed."""

    def __init__(self, handling: asyncio.Lock) -> None:
        self.handling = handling

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.handling:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pass


def _kafka_consumer(app: PipelineApp) -> AIOKafkaConsumer:
    """A consumer configured like Faust's own (broker, credentials, group timing), in group `<id>-batches`."""
    conf = app.conf
    return AIOKafkaConsumer(
        bootstrap_servers=server_list(conf.broker, 9092),
        client_id=conf.broker_client_id,
        group_id=f"{conf.id}-batches",
        enable_auto_commit=False,
        auto_offset_reset=conf.consumer_auto_offset_reset,
        session_timeout_ms=int(conf.broker_session_timeout * 1000),
        rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
        heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
        request_timeout_ms=int(conf.broker_request_timeout * 1000),
        max_partition_fetch_bytes=conf.consumer_max_fetch_size,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
    )
