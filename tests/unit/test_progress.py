"""Lag and stall detection per partition, as `/readyz` and `streamline_consumer_lag` compute them."""

from __future__ import annotations

from faust.types import TP

from worker.runtime.progress import PartitionProgress, ProgressSensor

WINDOW = 30.0


def test_lag_counts_from_the_next_offset_to_finish() -> None:
    part = PartitionProgress(moved_at=0.0, first_in=10, last_out=14)
    part.observe(highwater=20, now=1.0)
    assert part.lag == 5  # offsets 15..19


def test_a_message_taken_but_not_finished_is_lag() -> None:
    part = PartitionProgress(moved_at=0.0, first_in=7)
    part.observe(highwater=8, now=1.0)
    assert part.lag == 1


def test_nothing_taken_since_the_assignment_counts_as_caught_up() -> None:
    part = PartitionProgress(moved_at=0.0)
    part.observe(highwater=100, now=1.0)
    assert part.lag == 0 and part.moved_at == 1.0


def test_an_unknown_high_watermark_is_no_evidence_of_lag() -> None:
    part = PartitionProgress(moved_at=0.0, first_in=3)
    part.observe(highwater=None, now=50.0)
    assert part.lag is None and not part.stalled(now=50.0, window=WINDOW)


def test_a_stall_is_lag_with_no_progress_for_the_whole_window() -> None:
    part = PartitionProgress(moved_at=0.0, first_in=0)
    part.observe(highwater=3, now=10.0)
    assert not part.stalled(now=30.0, window=WINDOW)
    assert part.stalled(now=30.1, window=WINDOW)


def test_idle_without_lag_is_not_a_stall() -> None:
    part = PartitionProgress(moved_at=0.0, first_in=0, last_out=2)
    part.observe(highwater=3, now=100.0)
    assert part.lag == 0 and not part.stalled(now=200.0, window=WINDOW)


def test_the_sensor_records_what_agents_take_and_finish() -> None:
    sensor, tp = ProgressSensor(), TP("orders", 2)
    sensor.on_message_in(tp, 41, None)  # type: ignore[arg-type]
    sensor.on_message_in(tp, 42, None)  # type: ignore[arg-type]
    sensor.on_message_out(tp, 41, None)  # type: ignore[arg-type]
    part = sensor.partitions[tp]
    assert (part.first_in, part.last_out, part.next_offset()) == (41, 41, 42)


def test_before_the_first_message_lag_counts_from_the_committed_offset() -> None:
    # A consumer that fetches nothing after an assignment (Faust's silent stop) shows lag, so it
    # stalls in readiness instead of counting as caught up.
    part = PartitionProgress(moved_at=0.0, start=137)
    part.observe(highwater=500, now=1.0)
    assert part.lag == 363
    assert part.stalled(now=31.1, window=WINDOW)
    part.first_in = 137
    part.last_out = 499
    part.observe(highwater=500, now=32.0)
    assert part.lag == 0 and not part.stalled(now=32.0, window=WINDOW)
