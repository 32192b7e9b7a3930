"""The private parts of Faust, mode and aiokafka that the runtime relies on: an upgrade that moves one
fails here, naming what moved and which module of the runtime to look at, instead of deep in a run.

Every reach into a library's internals is in `worker/runtime/`; this list is theirs.
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.app.base import BootStrategy
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import Stream
from faust.transport import consumer as faust_consumer
from faust.transport.conductor import Conductor, ConductorCompiler
from faust.transport.drivers import aiokafka as driver
from faust.transport.producer import Producer, ProducerBuffer
from faust.web.drivers.aiohttp import Web
from mode.worker import Worker as ModeWorker

#: (object, attribute, the runtime module that needs it)
ATTRIBUTES: list[tuple[Any, str, str]] = [
    # transport.py: the at-least-once consumer and the flushing producer
    (faust_consumer.Consumer, "_new_offset", "transport"),
    (faust_consumer.Consumer, "_wait_for_ack", "transport"),
    (faust_consumer.Consumer, "_clean_unacked_messages", "transport"),
    (faust_consumer.Consumer, "commit_and_end_transactions", "transport"),
    (faust_consumer.Consumer, "wait_empty", "transport"),
    (faust_consumer.Consumer, "getmany", "transport"),
    (faust_consumer.Consumer, "perform_seek", "transport"),
    (driver.Consumer, "earliest_offsets", "transport"),
    (driver.AIOKafkaConsumerThread, "seek_to_beginning", "transport"),
    (faust_consumer.Consumer, "pause_partitions", "streams"),
    (faust_consumer.Consumer, "resume_partitions", "streams"),
    (driver.Consumer, "verify_event_path", "transport"),
    (driver.Consumer, "highwaters", "transport"),
    (driver.Transport, "Consumer", "transport"),
    (driver.Transport, "Producer", "transport"),
    (Producer, "send_soon", "transport"),
    (ProducerBuffer, "flush", "transport"),
    (driver.Producer, "_ensure_producer", "publish, changelogs"),
    (driver.Producer, "_new_producer", "batches"),
    # fetchloop.py: Faust's fetch loop, handing records over directly (what it replaces and reads)
    (faust_consumer.Consumer, "_drain_messages", "fetchloop"),
    (faust_consumer.Consumer, "_add_gap", "fetchloop"),
    (faust_consumer.Consumer, "_n_acked", "fetchloop"),
    (faust_consumer.Consumer, "consumer_stopped_errors", "fetchloop"),
    (ProducerBuffer, "max_messages", "fetchloop"),
    (Conductor, "acks_enabled_for", "fetchloop"),
    # outbox.py: record batches straight to aiokafka
    (AIOKafkaProducer, "create_batch", "outbox, changelogs"),
    (AIOKafkaProducer, "send_batch", "outbox, changelogs"),
    (AIOKafkaProducer, "partitions_for", "outbox"),
    (AIOKafkaConsumer, "highwater", "batches, progress"),
    # kafka.py: a consumer closed without leaving its group
    (GroupCoordinator, "_stop_heartbeat_task", "kafka"),
    (GroupCoordinator, "_stop_commit_offsets_refresh_task", "kafka"),
    (Fetcher, "close", "kafka"),
    # kafka.py: a consumer waits after a fetch that brought nothing
    (Fetcher, "_proc_fetch_request", "kafka"),
    # kafka.py: an empty assignment is no partitions
    (GroupCoordinator, "_on_join_complete", "kafka"),
    # kafka.py: a consumer rejoins under its own member id
    (GroupCoordinator, "reset_generation", "kafka"),
    (GroupCoordinator, "request_rejoin", "kafka"),
    (driver.Consumer, "_new_consumer_thread", "transport"),
    (driver.AIOKafkaConsumerThread, "on_start", "transport"),
    # app.py: aiokafka's warnings held back from the moment a stop signal arrives (shutdown.py)
    (ModeWorker, "install_signal_handlers", "app"),
    # streams.py: a Faust agent that acknowledges only after output
    (Stream, "noack", "streams"),
    (Stream, "events", "streams"),
    # stores.py: RocksDB writes outside a stream event
    (RocksDBStore, "_set", "stores"),
    (RocksDBStore, "_db_for_partition", "stores"),
    (RocksDBStore, "_open_for_partition", "stores"),
    (RocksDBStore, "revoke_partitions", "stores"),
    (RocksDBStore, "reset_state", "stores"),
    (faust.Table, "_new_store_by_url", "stores"),
    # app.py: boot order, web and workers
    (BootStrategy, "web_server", "app"),
    (BootStrategy, "agents", "app"),
    (faust.App, "_new_web", "app"),
    (faust.App, "_new_transport", "app"),
    (faust.Worker, "on_setup_root_logger", "app"),
    (Web, "production_blueprints", "app"),
]


@pytest.mark.parametrize(("owner", "name", "user"), ATTRIBUTES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_what_the_runtime_reaches_into_is_still_there(owner: Any, name: str, user: str) -> None:
    assert hasattr(owner, name), (
        f"{owner.__module__}.{owner.__name__}.{name} is gone: worker/runtime/{user}.py relies on it"
    )


def test_the_consumer_state_the_fixes_read_is_still_made_by_faust() -> None:
    # Attributes set in __init__ (not on the class): read from the constructor's source.
    source = inspect.getsource(faust_consumer.Consumer.__init__)
    names = (
        "_unacked_messages",
        "_acked",
        "_committed_offset",
        "_read_offset",
        "_waiting_for_ack",
        "_commit_every",
    )
    for name in names:
        assert f"self.{name}" in source, (
            f"Faust's Consumer no longer keeps {name}: see worker/runtime/transport.py"
        )


def test_the_consumer_still_delegates_to_its_thread() -> None:
    source = inspect.getsource(faust_consumer.ThreadDelegateConsumer.__init__)
    assert "self._thread" in source, "Faust's consumer has no _thread: see worker/runtime/transport.py"


def test_the_consumer_parts_a_stop_closes_are_still_made_by_aiokafka() -> None:
    source = inspect.getsource(AIOKafkaConsumer.__init__) + inspect.getsource(AIOKafkaConsumer.start)
    for name in ("_coordinator", "_fetcher", "_client"):
        assert f"self.{name}" in source, (
            f"AIOKafkaConsumer no longer keeps {name}: see worker/runtime/kafka.py"
        )
    assert "self._coordination_task" in inspect.getsource(GroupCoordinator.__init__), (
        "see worker/runtime/kafka.py"
    )


def test_the_fetcher_still_looks_its_fetch_step_up_on_itself_and_keeps_its_wait() -> None:
    # hold_empty_fetches replaces the step on the instance: the fetch loop must call it through self,
    # and take a falsy result as "no new data".
    assert "self._proc_fetch_request(" in inspect.getsource(Fetcher._fetch_requests_routine)
    assert "self._fetch_max_wait_ms" in inspect.getsource(Fetcher.__init__), "see worker/runtime/kafka.py"


def test_a_cancelled_fetch_step_still_ends_itself_and_a_close_still_cancels_the_loop_task() -> None:
    # hold_empty_fetches tells a cancel by the task's count (aiokafka's step returns False on one);
    # close_fetches_for_good cancels `_fetch_task` itself before aiokafka's close awaits it.
    step = inspect.getsource(Fetcher._proc_fetch_request)
    assert "except asyncio.CancelledError:" in step and "return False" in step, "see worker/runtime/kafka.py"
    assert "self._fetch_task.cancel()" in inspect.getsource(Fetcher.close), "see worker/runtime/kafka.py"


def test_a_table_write_still_reaches_the_apps_producer_as_a_future_message() -> None:
    # FlushingProducer.send_soon queues table writes where Faust hands them over (with their
    # partition); changelogs.py resolves each as Faust's producer does, then calls the table's
    # callback, which keeps RocksDB's persisted offset from the metadata's offset and partition;
    # a record batch's future gives the batch's base offset.
    from aiokafka.producer.message_accumulator import MessageBatch
    from faust.tables.base import Collection
    from faust.topics import Topic

    assert "self.changelog_topic.send_soon(" in inspect.getsource(Collection.send_changelog)
    assert "eager_partitioning=True" in inspect.getsource(Collection.send_changelog)
    assert "self.app.producer.send_soon(fut)" in inspect.getsource(Topic.send_soon)
    published = inspect.getsource(Topic._on_published)
    assert "message.set_result(res)" in published and "message.message.callback(message)" in published
    sent = inspect.getsource(Collection._on_changelog_sent)
    assert "res.offset" in sent and "res.topic_partition" in sent, "see worker/runtime/changelogs.py"
    assert "base_offset" in inspect.getsource(MessageBatch.done), "see worker/runtime/changelogs.py"


def test_the_coordinator_still_completes_a_join_through_itself() -> None:
    # accept_empty_assignments replaces the step on the instance.
    source = inspect.getsource(GroupCoordinator)
    assert "await self._on_join_complete(" in source, "see worker/runtime/kafka.py"


def test_the_group_join_steps_still_reset_the_generation_themselves() -> None:
    from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

    from worker.runtime.kafka import JOIN_STEPS

    for step in JOIN_STEPS:  # rejoin_as_itself tells their resets from a commit's by their name
        assert "reset_generation()" in inspect.getsource(getattr(CoordinatorGroupRebalance, step)), step


def test_the_current_event_is_still_a_context_variable() -> None:
    from faust import streams

    assert isinstance(streams._current_event, ContextVar), "see worker/runtime/streams.py"
    from faust.types.tuples import ack_lock
    from mode.utils.futures import notify

    assert ack_lock is not None and callable(notify)


def test_the_signatures_the_fixes_override_are_unchanged() -> None:
    expected = {
        faust_consumer.Consumer._new_offset: ["self", "tp"],
        faust_consumer.Consumer.ack: ["self", "message"],
        faust_consumer.Consumer.getmany: ["self", "timeout"],
        faust_consumer.Consumer.perform_seek: ["self"],
        faust_consumer.Consumer._drain_messages: ["self", "fetcher"],
        RocksDBStore._set: ["self", "key", "value"],
        Producer.send_soon: ["self", "fut"],
    }
    for function, parameters in expected.items():
        assert list(inspect.signature(function).parameters) == parameters, function.__qualname__


def test_flow_control_still_clears_its_queues_once_flow_stops_and_before_the_wait() -> None:
    # streams.StreamEngine.clear drops its batch; transport's wait_empty releases what no stage handles.
    from mode.utils.queues import FlowControlEvent

    assert "self._queues.add(queue)" in inspect.getsource(FlowControlEvent.manage_queue), "see streams.py"
    assert "queue.clear()" in inspect.getsource(FlowControlEvent.clear), "see streams.py"
    for step in (faust.App._stop_consumer, faust.App._on_partitions_revoked):
        source = inspect.getsource(step)
        calls = ("self.flow_control.suspend", "self.flow_control.clear", "wait_empty")
        suspend, clear, wait = (source.index(call) for call in calls)
        assert suspend < clear < wait, f"{step.__qualname__}: see transport.py, wait_empty"


def test_faust_still_hands_each_fetched_record_over_as_the_fetch_loop_expects() -> None:
    # fetchloop.py hands a record over directly only when Faust's delivery would not wait: these are
    # the waits Faust's delivery has (flow control, its producer buffer, a full channel).
    source = inspect.getsource(ConductorCompiler)
    for wait in ("acquire_flow_control()", "wait_until_producer_ebb()", "queue.full()"):
        assert wait in source, f"Faust's delivery changed ({wait}): see worker/runtime/fetchloop.py"
    assert "_tp_index" in inspect.getsource(Conductor.__init__)
