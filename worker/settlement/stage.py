"""payouts-approved | payouts-rejected -> the settlement ledger: each payout settles exactly once (and
is indexed by its order id)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.errors import InvalidRecord
from worker.payouts.records import Payout, decode_payout
from worker.reasons import Reason
from worker.runtime.context import Context
from worker.runtime.outbox import Outbox
from worker.runtime.stage import Stage
from worker.settlement.ledger import Ledger, Settle, Settlement, settle
from worker.wire import checked

STATES = {"payouts-approved": "approved", "payouts-rejected": "rejected"}


def settlement(ctx: Context, ledger: Ledger) -> Stage[Payout]:
    """The `settlement` stage: record each payout's final state once; refuse a conflicting repeat."""
    topics = ctx.topics
    states = {topics[name].get_topic_name(): state for name, state in STATES.items()}
    seen = ledger.seen

    def handle(payout: Payout, out: Outbox) -> None:
        assert out.source is not None
        state = states[out.source.topic]
        outcome = settle(ledger.entry(payout.payout_id), payout, state)
        seen[outcome.value] += 1
        if outcome is Settle.CONFLICT:
            detail = f"payout {payout.payout_id} is already settled differently"
            raise InvalidRecord(Reason.CONFLICTING_DUPLICATE, detail)
        if outcome is Settle.NEW:
            ledger.record(
                checked(
                    Settlement,
                    payout_id=payout.payout_id,
                    seller_id=payout.seller_id,
                    state=state,
                    net=payout.net,
                    currency=payout.currency,
                    settled_at=datetime.now(UTC),
                    ledger_partition=out.source.partition,
                    offset=out.source.offset,
                )
            )
            ledger.index(payout.order_id, payout.seller_id)

    return Stage("settlement", topics.joined(*STATES), decode_payout, handle)
