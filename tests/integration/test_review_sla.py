"""SLA escalation against the embedded broker: announced once, even across a worker restart."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.brokers import QUIRKS
from tests.kafka import read_until
from tests.reviews import SHARED, hold, stats, until, web_port
from tests.stores import each_store

SLA = timedelta(seconds=2)


@each_store
async def test_an_overdue_review_is_escalated_once_even_after_a_restart(
    bootstrap, start_pipeline, tmp_path, table_store: str
) -> None:
    settings = {
        **SHARED,
        "table_store": table_store,
        "data_dir": tmp_path / "state",  # the same files for both runs
        "review_threshold": Decimal("500.00"),
        "review_sla": SLA,
        # Tansu keeps the stopped worker in the group until its session expires, and the restarted
        # one joins twice meanwhile: a short session makes the restart ~10 s quicker. Apache Kafka (and
        # noida-db) refuse sessions under 6 s (test_broker_quirks.py, the session floor).
        "kafka_session_timeout_s": 3 if QUIRKS == "tansu" else 6,
    }
    first = await start_pipeline(**settings)
    escalated = first.topics.payouts_review_escalated.get_topic_name()
    [early] = await hold(bootstrap, first, ["o-early"])

    [announced] = await read_until(bootstrap, escalated, bool)

    assert announced["payout"]["payout_id"] == early
    assert announced["sla_seconds"] == 2.0
    assert announced["escalated_at"] > announced["held_at"]
    await first.app.stop()

    # The same app id again: its tables come back from their changelogs, escalation mark included.
    second = await start_pipeline(**settings)
    port = web_port(second)
    await until(lambda: stats(port), lambda s: s["reviews"]["pending"] == 1)
    [late] = await hold(bootstrap, second, ["o-late"])
    # The timer run that escalates `late` has looked at `early` too (it is overdue since the start).
    announcements = await read_until(bootstrap, escalated, lambda values: len(values) >= 2)
    assert sorted(a["payout"]["payout_id"] for a in announcements) == sorted([early, late])
    assert (await stats(port))["topics"][escalated]["produced"] == 1
