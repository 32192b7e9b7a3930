"""Every reason a message can be refused for: the stable codes of dead letters and of the review API.

`InvalidRecord` takes one of these; the topic contracts (`worker.contracts`) list them as the enum of a
dead letter's `reason`, with what each means. The order is the order the decoders check in: when a
value breaks several rules, the first one named here is the reason given.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """A stable, machine-readable reason code (written as its value: `invalid_json`)."""

    NULL_VALUE = "null_value"
    EMPTY_VALUE = "empty_value"
    OVERSIZED = "oversized"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_AMOUNT = "invalid_amount"
    TOO_MANY_DECIMALS = "too_many_decimals"
    NON_POSITIVE_AMOUNT = "non_positive_amount"
    AMOUNT_TOO_LARGE = "amount_too_large"
    UNKNOWN_CURRENCY = "unknown_currency"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    INVALID_BASE64 = "invalid_base64"
    UNKNOWN_DECISION = "unknown_decision"
    TEXT_TOO_LONG = "text_too_long"
    FEE_EXCEEDS_AMOUNT = "fee_exceeds_amount"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    INVALID_STATE = "invalid_state"
    MESSAGE_TOO_LARGE = "message_too_large"
    PROCESSING_ERROR = "processing_error"
    REVIEWER_MISMATCH = "reviewer_mismatch"
    UNKNOWN_FIELD = "unknown_field"


#: What each reason means, for the people who read a dead letter (and the contracts' description).
MEANINGS: dict[Reason, str] = {
    Reason.NULL_VALUE: "the message has no value (a tombstone)",
    Reason.EMPTY_VALUE: "the message value is empty or blank",
    Reason.OVERSIZED: "the message is above 64 KiB: a producer bug, not an order",
    Reason.INVALID_UTF8: "the value is not UTF-8",
    Reason.INVALID_JSON: "the value is not JSON (NaN and Infinity are not JSON either)",
    Reason.NOT_AN_OBJECT: "the value is JSON but not an object",
    Reason.MISSING_FIELD: "a required field is absent, null or blank",
    Reason.WRONG_TYPE: "a field has the wrong JSON type (a JSON number for money: it went through a float)",
    Reason.INVALID_AMOUNT: "money is not ASCII digits with an optional point and decimals",
    Reason.TOO_MANY_DECIMALS: "money has more than two decimals",
    Reason.NON_POSITIVE_AMOUNT: "money is negative, or zero where it must be above zero",
    Reason.AMOUNT_TOO_LARGE: "money is above 1000000000.00",
    Reason.UNKNOWN_CURRENCY: "the currency is not one the deployment accepts (CURRENCIES)",
    Reason.INVALID_TIMESTAMP: "a time is not ISO-8601 with a zone, or outside what UTC can hold",
    Reason.FUTURE_TIMESTAMP: "an order's time is more than 5 minutes ahead of the worker's clock",
    Reason.INVALID_BASE64: "a dead letter's payload or key is not base64 (read back by replay)",
    Reason.UNKNOWN_DECISION: "a review decision is neither approve nor reject",
    Reason.TEXT_TOO_LONG: "a reviewer's name or reason is longer than 2000 characters",
    Reason.FEE_EXCEEDS_AMOUNT: "the marketplace fee leaves nothing of the order's amount",
    Reason.CONFLICTING_DUPLICATE: "a payout id arrived again with other content, or a different decision",
    Reason.INVALID_STATE: "a record on the worker's own internal topic is not what the worker writes",
    Reason.MESSAGE_TOO_LARGE: "the broker refused an output message as too large",
    Reason.PROCESSING_ERROR: "a stage failed on the message (a bug); PROCESSING_ERRORS=dead-letter",
    Reason.REVIEWER_MISMATCH: "a review request names a reviewer other than its token's (HTTP 400)",
    Reason.UNKNOWN_FIELD: "a review request has a field other than reviewer and reason (HTTP 400)",
}

#: Reasons never written to `dead-letters`: the review API's answers, and replay's reading of letters.
NOT_DEAD_LETTERS = frozenset({Reason.REVIEWER_MISMATCH, Reason.UNKNOWN_FIELD, Reason.INVALID_BASE64})
#: The reasons a dead letter can carry, in the decoders' order.
DEAD_LETTER_REASONS = tuple(reason for reason in Reason if reason not in NOT_DEAD_LETTERS)
