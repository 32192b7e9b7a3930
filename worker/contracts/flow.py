"""The pipeline's topics as other teams see them: what each carries, its key, who writes and reads it.

A unit test holds this against the stages `worker.main.build` runs (every stage's source topic), and
an integration test against what the running pipeline writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import faust

from worker.payouts.records import Order, Payout
from worker.review.records import ReviewDecision, ReviewedPayout, ReviewEscalation
from worker.runtime.deadletters import DeadLetter

SELLER = "The seller id (`seller_id`), as text."


@dataclass(frozen=True)
class Topic:
    """A pipeline topic (its name without `TOPIC_PREFIX`), the records on it and its key."""

    name: str
    summary: str
    key: str
    records: tuple[type[faust.Record], ...]


@dataclass(frozen=True)
class Operation:
    """A stage (or timer, view or command) of the worker that sends to or receives from a topic."""

    stage: str
    action: Literal["send", "receive"]
    topic: str
    summary: str


TOPICS = (
    Topic(
        "orders",
        "Orders from other services: the pipeline's input.",
        "The seller id, by convention: the worker keys what follows by seller whatever the key.",
        (Order,),
    ),
    Topic("payouts", "The payout of each order, after the marketplace fee.", SELLER, (Payout,)),
    Topic(
        "payouts-approved",
        "Payouts to pay: below REVIEW_THRESHOLD (a Payout) or approved by a person (with `review`).",
        SELLER,
        (Payout, ReviewedPayout),
    ),
    Topic("payouts-rejected", "Payouts a person rejected, with the decision.", SELLER, (ReviewedPayout,)),
    Topic("payouts-review", "Payouts above REVIEW_THRESHOLD, held for a person.", SELLER, (Payout,)),
    Topic(
        "payouts-review-escalated",
        "Held payouts still waiting after REVIEW_SLA, each announced once.",
        SELLER,
        (ReviewEscalation,),
    ),
    Topic(
        "review-decisions",
        "A person's decision on a held payout: from the review API, or another service.",
        "The payout id (`payout_id`), as text.",
        (ReviewDecision,),
    ),
    Topic(
        "dead-letters",
        "Messages the pipeline could not process, byte for byte, with their origin and a reason code.",
        "The refused message's own key, unchanged (absent when it had none).",
        (DeadLetter,),
    ),
)

OPERATIONS = (
    Operation("storefront", "send", "orders", "Simulated orders (STOREFRONT_ORDERS_PER_SECOND > 0 only)."),
    Operation("orders-to-payouts", "receive", "orders", "Validate each order (else a dead letter)."),
    Operation("orders-to-payouts", "send", "payouts", "The order's payout, keyed by seller."),
    Operation("screening", "receive", "payouts", "Route each payout by REVIEW_THRESHOLD."),
    Operation("screening", "send", "payouts-approved", "Payouts up to the threshold."),
    Operation("screening", "send", "payouts-review", "Payouts above the threshold."),
    Operation("review-intake", "receive", "payouts-review", "Hold each payout for a person."),
    Operation("review-api", "send", "review-decisions", "A reviewer's POST /reviews/{payout_id}/{decision}."),
    Operation("review-decisions", "receive", "review-decisions", "Apply each decision once."),
    Operation(
        "review-decisions",
        "send",
        "review-decisions",
        "Forward a decision that came on another partition than its payout's.",
    ),
    Operation("review-decisions", "send", "payouts-approved", "An approved payout, with the decision."),
    Operation("review-decisions", "send", "payouts-rejected", "A rejected payout, with the decision."),
    Operation("review-escalation", "send", "payouts-review-escalated", "A review waiting past REVIEW_SLA."),
    Operation("seller-history", "receive", "payouts-approved", "Each seller's recent payouts."),
    Operation("settlement", "receive", "payouts-approved", "Settle each payout once in the ledger."),
    Operation("settlement", "receive", "payouts-rejected", "Record each rejection once in the ledger."),
    Operation(
        "journey", "receive", "payouts-approved", "A settled payout read again at its offset (its journey)."
    ),
    Operation(
        "journey", "receive", "payouts-rejected", "A settled payout read again at its offset (its journey)."
    ),
    Operation("every-stage", "send", "dead-letters", "A message a stage cannot process, with the reason."),
    Operation("replay", "receive", "dead-letters", "`python -m worker replay`: read the dead letters."),
    *(
        Operation("replay", "send", name, "Send a dead letter's payload back to the input it came from.")
        for name in ("orders", "payouts", "payouts-review", "review-decisions")
    ),
)


def topic(name: str) -> Topic:
    """The topic called `name` (without prefix)."""
    return next(t for t in TOPICS if t.name == name)
