"""The business rules, as pure functions: fees, payout ids, screening.

No Faust, no I/O, no clock: everything a rule needs comes in as an argument.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from worker.errors import RejectedByRule
from worker.payouts.records import Order, Payout
from worker.reasons import Reason
from worker.wire import checked, replaced

CENT = Decimal("0.01")
#: Fixed namespace so that the same seller and order give the same payout id on every worker, forever.
PAYOUT_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4d57-9a51-0d7b2f6c8e11")
_NAMESPACE_BYTES = PAYOUT_NAMESPACE.bytes
#: What `payout_id_for` returns, and nothing else.
_PAYOUT_ID = re.compile(r"po-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass(frozen=True)
class FeeSchedule:
    """The marketplace's fee: `rate` x amount + `fixed`."""

    rate: Decimal
    fixed: Decimal


class Route(enum.Enum):
    """Where screening sends a payout."""

    APPROVED = "approved"
    REVIEW = "review"


def fee_for(amount: Decimal, schedule: FeeSchedule) -> Decimal:
    """The fee on `amount`: rate x amount + fixed fee, rounded half-even to cents."""
    return (schedule.rate * amount + schedule.fixed).quantize(CENT, rounding=ROUND_HALF_EVEN)


def payout_id_for(seller_id: str, order_id: str) -> str:
    """A payout id derived from the seller and the order: the same order always gives the same payout.

    Order ids are unique per seller, not across sellers: one customer order often holds items of
    several sellers, each paid separately. The name hashed is the seller id's length in UTF-8 bytes,
    `:`, the seller id and the order id (`"3:s-9o-1"`), so that no two pairs give the same name.
    `po-` + `uuid.uuid5(PAYOUT_NAMESPACE, name)`, written out (a fifth of the cost, tested equal).
    """
    seller = seller_id.encode()
    name = b"%d:%b%b" % (len(seller), seller, order_id.encode())
    h = hashlib.sha1(_NAMESPACE_BYTES + name).hexdigest()
    variant = "89ab"[int(h[16], 16) & 0x3]  # RFC 4122 variant bits over the hash's
    return f"po-{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def is_payout_id(text: str) -> bool:
    """True when `text` has the shape of a payout id this pipeline derives."""
    return _PAYOUT_ID.fullmatch(text) is not None


def payout_for(
    order: Order, schedule: FeeSchedule, *, now: datetime, origin: tuple[str, int, int] | None = None
) -> Payout:
    """The payout a seller gets for `order`, or RejectedByRule when the fee eats the whole amount.

    It records how it was computed: the schedule (`applied`), and the order's `origin` (topic,
    partition, offset).
    """
    fee = fee_for(order.amount, schedule)
    net = order.amount - fee
    if net <= 0:
        raise RejectedByRule(Reason.FEE_EXCEEDS_AMOUNT, f"fee {fee} leaves nothing of amount {order.amount}")
    topic, partition, offset = origin or (None, None, None)
    return checked(
        Payout,
        payout_id=payout_id_for(order.seller_id, order.order_id),
        order_id=order.order_id,
        seller_id=order.seller_id,
        gross=order.amount,
        fee=fee,
        net=net,
        currency=order.currency,
        created_at=now,
        order_created_at=order.created_at,
        customer_id=order.customer_id,
        order_topic=topic,
        order_partition=partition,
        order_offset=offset,
        applied=_applied(schedule),
    )


@functools.cache
def _applied(schedule: FeeSchedule) -> dict[str, str]:
    # One dict for every payout of a schedule: nothing changes it (screening makes a new one).
    return {"fee_rate": str(schedule.rate), "fee_fixed": str(schedule.fixed)}


def same_payout(a: Payout, b: Payout) -> bool:
    """True when two payouts with one id are the same payout: all but `created_at` is equal.

    `created_at` is when a worker computed the payout, so a redelivered order gives a later one.
    """
    return _substance(a) == _substance(b)


def _substance(p: Payout) -> tuple[object, ...]:
    return (p.payout_id, p.order_id, p.seller_id, p.gross, p.fee, p.net, p.currency, p.order_created_at)


def screen(payout: Payout, threshold: Decimal) -> Route:
    """Net at or below the threshold is approved; above it a person must review the payout."""
    return Route.REVIEW if payout.net > threshold else Route.APPROVED


def screened(payout: Payout, threshold: Decimal) -> Payout:
    """The payout as screening sends it on: with the threshold it was screened against."""
    return replaced(payout, applied={**(payout.applied or {}), "review_threshold": str(threshold)})
