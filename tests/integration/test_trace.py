"""W3C `traceparent` on every output topic, dead letters included, against the real broker: kept when
the order brings one, created when it does not or brings an invalid one, a new span on every hop."""

from __future__ import annotations

from decimal import Decimal

import orjson

from tests.kafka import produce, read_until
from tests.reviews import TOKENS, big_order, decide, tokens_file, until, web_port
from worker.payouts.rules import payout_id_for
from worker.runtime import trace

SMALL = {"order_id": "o-t", "customer_id": "c-1", "amount": "20.00", "currency": "EUR"}


def small_order(order_id: str, seller: str) -> bytes:
    return orjson.dumps(
        {**SMALL, "order_id": order_id, "seller_id": seller, "created_at": "2026-11-28T10:00:00Z"}
    )


async def traced(bootstrap: str, topic: str, payout_id: str, count: int = 1) -> list[trace.Span]:
    """The spans of the records about `payout_id` on `topic` (each must carry a valid traceparent)."""

    def about(values: list) -> list:
        return [(h, v) for h, v in values if payout_id in orjson.dumps(v).decode()]

    found = about(await read_until(bootstrap, topic, lambda v: len(about(v)) >= count, with_headers=True))
    spans = [trace.parse(headers.get("traceparent")) for headers, _ in found]
    assert all(spans), found
    return spans  # type: ignore[return-value]


async def test_every_hop_carries_the_orders_trace_with_its_own_span(bootstrap, start_pipeline, tmp_path):
    pipeline = await start_pipeline(
        review_tokens_file=tokens_file(tmp_path), review_threshold=Decimal("500.00"), review_sla="2s"
    )
    topics, port = pipeline.topics, web_port(pipeline)
    name = {
        n: topics[n].get_topic_name() for n in ("orders", "payouts", "payouts-approved", "payouts-review")
    }
    given = {s: trace.new_trace() for s in ("s-kept", "s-held", "s-bad")}
    for seller, order in [
        ("s-kept", small_order("o-1", "s-kept")),
        ("s-held", big_order("o-2", seller="s-held")),
    ]:
        await produce(bootstrap, name["orders"], [(seller.encode(), order)], headers=given[seller].header())
    await produce(bootstrap, name["orders"], [(b"s-bad", b"{not json")], headers=given["s-bad"].header())
    await produce(bootstrap, name["orders"], [(b"s-new", small_order("o-3", "s-new"))])
    invalid = [("traceparent", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01")]  # an all-zero trace id
    await produce(bootstrap, name["orders"], [(b"s-inv", small_order("o-4", "s-inv"))], headers=invalid)
    kept, held, new, replaced = (
        payout_id_for(s, o)
        for s, o in [("s-kept", "o-1"), ("s-held", "o-2"), ("s-new", "o-3"), ("s-inv", "o-4")]
    )

    # Kept: the order's trace on both hops, a new span on each.
    [computed] = await traced(bootstrap, name["payouts"], kept)
    [approved] = await traced(bootstrap, name["payouts-approved"], kept)
    assert computed.trace_id == approved.trace_id == given["s-kept"].trace_id
    assert len({given["s-kept"].span_id, computed.span_id, approved.span_id}) == 3

    # Created: an order without one, or with an invalid one, starts its own trace, carried on.
    for payout_id in (new, replaced):
        [computed] = await traced(bootstrap, name["payouts"], payout_id)
        [approved] = await traced(bootstrap, name["payouts-approved"], payout_id)
        assert computed.trace_id == approved.trace_id != "0" * 32
        assert computed.span_id != approved.span_id

    # Held, escalated, decided by a person, rejected: one trace throughout.
    escalated = topics.payouts_review_escalated.get_topic_name()
    [escalation] = await traced(bootstrap, escalated, held)
    assert (await decide(port, held, "reject", reason="stolen card", token=TOKENS["bob"]))[0] == 200
    hops = [
        *await traced(bootstrap, name["payouts"], held),
        *await traced(bootstrap, name["payouts-review"], held),
        escalation,
        *await traced(bootstrap, topics.review_decisions.get_topic_name(), held),
        *await traced(bootstrap, topics.payouts_rejected.get_topic_name(), held),
    ]
    assert {span.trace_id for span in hops} == {given["s-held"].trace_id}
    assert len({span.span_id for span in hops}) == len(hops)

    # A dead letter carries the trace of the message it keeps, with the refusing hop's span.
    letters = await until(
        lambda: read_until(bootstrap, topics.dead_letters.get_topic_name(), bool, with_headers=True), bool
    )
    [(headers, letter)] = letters
    span = trace.parse(headers["traceparent"])
    assert letter["source_topic"] == name["orders"] and span is not None
    assert (span.trace_id, span.span_id != given["s-bad"].span_id) == (given["s-bad"].trace_id, True)
