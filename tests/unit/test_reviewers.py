"""Reviewer tokens: the tokens file (hashes only), who a token belongs to, and the settings."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import click
import pytest
from pydantic import SecretStr

from tests.unit.test_review_rules import NOW
from worker.errors import ConfigError, InvalidRecord
from worker.review.cli import manage_reviewers
from worker.review.records import decode_decision_request
from worker.settings import load_settings
from worker.tokens import Reviewers, TokensFileError, add, parse, read, remove, token_hash

HASH = "a" * 64


def test_add_keeps_only_the_hash_of_a_fresh_token_in_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    path = tmp_path / "reviewers"
    alice, bob = add(path, "alice"), add(path, "bob")
    assert alice != bob and len(alice) >= 40
    text = path.read_text()
    assert alice not in text and bob not in text
    assert text.splitlines() == [f"alice:{token_hash(alice)}", f"bob:{token_hash(bob)}"]
    assert token_hash(alice) == hashlib.sha256(alice.encode()).hexdigest()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_reviewer_is_added_once_replaced_on_purpose_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "reviewers"
    path.write_text("# who may review\nalice:" + HASH + "\n")
    with pytest.raises(TokensFileError, match="alice is a reviewer already"):
        add(path, "alice")
    fresh = add(path, "alice", replace=True)
    assert read(path) == {"alice": token_hash(fresh)} and path.read_text().startswith("# who may review\n")
    remove(path, "alice")
    assert read(path) == {}
    with pytest.raises(TokensFileError):
        remove(path, "alice")


@pytest.mark.parametrize("name", ["", "alice (the CFO)", "a:b", "-x", "x" * 65, "bob\n", "é"])
def test_a_name_that_could_mislead_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(TokensFileError):
        add(tmp_path / "reviewers", name)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"alice:{HASH[:-1]}", 1),
        (f"# ok\n\nalice {HASH}", 3),
        (f"alice:{HASH.upper()}", 1),
        (f"alice:{HASH}\nalice:{HASH}", 2),
        (f"alice (CFO):{HASH}", 1),
    ],
)
def test_a_malformed_file_names_the_line_but_never_its_content(text: str, line: int) -> None:
    with pytest.raises(TokensFileError, match=f"^line {line} ") as caught:
        parse(text)
    assert HASH not in str(caught.value) and "alice" not in str(caught.value)


def test_a_token_names_its_reviewer_from_the_file_or_the_shared_token(tmp_path: Path) -> None:
    path = tmp_path / "reviewers"
    bob = add(path, "bob")
    reviewers = Reviewers(path, SecretStr("shared-t0ken"), "ops")
    assert (reviewers.who(bob), reviewers.who("shared-t0ken")) == ("bob", "ops")
    assert (
        reviewers.who(bob[:-1]) is None
        and reviewers.who("") is None
        and reviewers.who(token_hash(bob)) is None
    )
    assert reviewers.closed() is None


def test_the_file_is_read_again_when_it_changes_and_a_broken_one_closes_the_api(tmp_path: Path) -> None:
    path = tmp_path / "reviewers"
    reviewers = Reviewers(path, SecretStr(""))
    assert reviewers.closed() is not None and "no reviewer is set up" in reviewers.closed().message  # type: ignore[union-attr]
    carol = add(path, "carol")
    assert reviewers.closed() is None and reviewers.who(carol) == "carol"
    path.write_text("carol:" + HASH + "\nbroken\n")
    closed = reviewers.closed()
    assert closed is not None and "line 2" in closed.message and HASH not in closed.message
    assert reviewers.who(carol) is None
    path.unlink()
    assert reviewers.closed() is not None


def test_the_api_records_the_tokens_reviewer_and_refuses_a_body_that_names_another() -> None:
    def request(body: bytes) -> str:
        return decode_decision_request(
            body, payout_id="po-1", decision="approve", reviewer="bob", now=NOW
        ).reviewer

    assert request(b'{"reason": "ok"}') == "bob"
    assert request(b'{"reason": "ok", "reviewer": " bob "}') == "bob"
    for other in (b'"alice (the CFO)"', b'"Bob"', b"7", b'["bob"]'):
        with pytest.raises(InvalidRecord) as caught:
            request(b'{"reason": "ok", "reviewer": ' + other + b"}")
        assert caught.value.reason == "reviewer_mismatch"


def test_the_settings_read_the_tokens_file_at_start_up_and_never_show_what_is_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().review_api_reviewer == "reviewer"
    path = tmp_path / "reviewers"
    monkeypatch.setenv("REVIEW_TOKENS_FILE", str(path))
    assert load_settings().review_tokens_file == path  # missing: no reviewer yet; `reviewers add` makes it
    path.write_text(f"alice:{HASH}\nbob:{HASH[:10]}\n")
    with pytest.raises(ConfigError, match="REVIEW_TOKENS_FILE: .*line 2") as caught:
        load_settings()
    assert HASH[:10] not in str(caught.value)
    monkeypatch.setenv("REVIEW_TOKEN", "my-own-t0ken")
    monkeypatch.setenv("REVIEW_TOKENS_FILE", "")
    monkeypatch.setenv("REVIEW_API_REVIEWER", "alice (the CFO)")
    with pytest.raises(ConfigError, match="REVIEW_API_REVIEWER"):
        load_settings()
    monkeypatch.setenv("REVIEW_API_REVIEWER", "ops")
    assert "my-own-t0ken" not in repr(load_settings())


def test_the_reviewers_command_needs_a_file_and_prints_the_token_once(tmp_path: Path) -> None:
    with pytest.raises(click.UsageError, match="REVIEW_TOKENS_FILE"):
        manage_reviewers("add", "alice", None)
    path = tmp_path / "reviewers"
    printed = manage_reviewers("add", "alice", path)
    token = printed.splitlines()[-1]
    assert read(path) == {"alice": token_hash(token)}
    assert manage_reviewers("list", None, path) == "alice" and token not in manage_reviewers(
        "list", None, path
    )
