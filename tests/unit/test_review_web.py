"""The review API's token check and paging, and the `reviews` command's requests and output."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import pytest
from pydantic import SecretStr

from worker.payouts.rules import payout_id_for
from worker.review.cli import duration, error_line, listing, request_for
from worker.review.listing import paging
from worker.runtime.auth import reviewer_for
from worker.tokens import Reviewers

TOKEN = SecretStr("tok-s3cret")
SHARED = Reviewers(None, TOKEN, "alice")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": ""}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Basic dG9rLXMzY3JldA=="}, 401),
        ({"Authorization": "Bearer tok-s3cre"}, 401),
        ({"Authorization": "Bearer tok-s3cret-and-more"}, 401),
    ],
)
def test_a_missing_or_wrong_token_is_refused(headers, status) -> None:
    refused = reviewer_for(headers, SHARED)
    assert isinstance(refused, tuple) and refused[0] == status
    assert "tok-s3cret" not in refused[1]


def test_the_right_token_names_its_reviewer_and_no_reviewer_set_up_closes_the_api() -> None:
    assert reviewer_for({"Authorization": "Bearer tok-s3cret"}, SHARED) == "alice"
    assert reviewer_for({"Authorization": "bearer  tok-s3cret "}, SHARED) == "alice"
    refused = reviewer_for({"Authorization": "Bearer anything"}, Reviewers(None, SecretStr("")))
    assert isinstance(refused, tuple) and refused[0] == 503 and "REVIEW_API_TOKEN" in refused[1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (0, 50)), ({"offset": "10", "limit": "5"}, (10, 5)), ({"limit": "500"}, (0, 500))],
)
def test_paging(query, expected) -> None:
    assert paging(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        {"offset": "-1"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"offset": str(2**63)},  # a 500 from orjson when the page was encoded
        {"offset": str(2**64)},
        {"offset": "1000001"},
        {"offset": "1_0"},
        {"offset": " 5"},
        {"offset": "+5"},
        {"limit": "\u0665"},  # an Arabic-Indic five: int() reads it
    ],
)
def test_bad_paging_is_refused(query) -> None:
    with pytest.raises(ValueError):
        paging(query)


PAYOUT_ID = payout_id_for("s-1", "o-1")


def test_the_command_line_becomes_the_api_request() -> None:
    options = {"limit": 20, "reason": "known seller"}
    assert request_for("list", None, options) == ("GET", "/reviews?limit=20", None)
    assert request_for("reject", PAYOUT_ID, options) == (
        "POST",
        f"/reviews/{PAYOUT_ID}/reject",
        {"reason": "known seller"},
    )
    with pytest.raises(click.UsageError):
        request_for("approve", PAYOUT_ID, {**options, "reason": None})
    with pytest.raises(click.UsageError):
        request_for("approve", None, options)


@pytest.mark.parametrize(
    "payout_id",
    [
        f"{PAYOUT_ID}/reject?x=",  # approving this rejected the payout
        f"{PAYOUT_ID}/reject#",
        f"../{PAYOUT_ID}",
        f"{PAYOUT_ID}%2Freject",
        f"{PAYOUT_ID}\n",
        PAYOUT_ID.upper(),
        "po-1",
        "",
    ],
)
def test_the_command_line_refuses_anything_that_is_not_a_payout_id(payout_id: str) -> None:
    with pytest.raises(click.UsageError, match="not a payout id|usage"):
        request_for("approve", payout_id, {"reason": "ok"})


def test_the_listing_reads_well() -> None:
    page = {
        "total": 1,
        "reviews": [
            {
                "payout": {"payout_id": "po-1", "seller_id": "s-1", "net": "1500.00", "currency": "EUR"},
                "held_at": "2026-11-28T10:00:00Z",
                "escalated_at": "2026-11-29T10:00:00Z",
            }
        ],
    }
    text = listing(page, now=datetime(2026, 11, 29, 12, 30, tzinfo=UTC))
    assert text.splitlines()[0] == "1 payout(s) waiting for review"
    assert "po-1" in text and "1500.00 EUR" in text and "1 d 2 h" in text and "OVERDUE" in text
    assert [duration(s) for s in (5, 600, 3 * 3600 + 300)] == ["5 s", "10 min", "3 h 5 min"]


def test_the_listing_shows_control_characters_escaped() -> None:
    payout = {"payout_id": "po-1", "seller_id": "s-\x1b[2J\x1b[31m\nFAKE", "net": "1.00\r", "currency": "EUR"}
    page = {"total": 1, "reviews": [{"payout": payout, "held_at": "2026-11-28T10:00:00Z"}]}
    text = listing(page, now=datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC))
    assert len(text.splitlines()) == 2 and "\x1b" not in text and "\r" not in text
    assert "s-\\x1b[2J\\x1b[31m\\nFAKE" in text


def test_an_error_from_the_worker_is_printed_on_one_line_escaped() -> None:
    assert error_line("HTTP 404: no payout po-x\x1b]0;owned\x07\n waiting") == (
        "reviews: HTTP 404: no payout po-x\\x1b]0;owned\\x07\\n waiting"
    )
