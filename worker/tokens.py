"""Who may review: one token per reviewer, kept only as its SHA-256 (`REVIEW_TOKENS_FILE`).

The file has one `name:sha256hex(token)` per line; blank lines and `#` comments are allowed.
`python -m worker reviewers add NAME` adds a line and prints the new token once. A token is 32
random bytes, so an unsalted SHA-256 is enough to keep it out of the file (it is not a password that
could be guessed). `REVIEW_API_TOKEN` still works, as one reviewer named `REVIEW_API_REVIEWER`.

A worker re-reads the file when it changes, so a reviewer added or removed counts at the next
request; a file that cannot be read closes the review API (503) rather than keep old tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

#: A reviewer's name: what the audit record shows. No spaces, no colon, nothing a log line would escape.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_ENTRY = re.compile(r"([^:]*):([0-9a-f]{64})")


class TokensFileError(ValueError):
    """The tokens file cannot be used. The message names the line, never its content."""


def token_hash(token: str) -> str:
    """The SHA-256 of a token, as the tokens file keeps it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh reviewer token: 32 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    """`name` if it can name a reviewer, else TokensFileError."""
    if NAME.fullmatch(name) is None:
        raise TokensFileError("a reviewer's name is 1 to 64 letters, digits, '.', '_', '@' or '-'")
    return name


def parse(text: str) -> dict[str, str]:
    """The reviewers of a tokens file's text: name -> token hash."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry = _ENTRY.fullmatch(line.strip())
        if entry is None or NAME.fullmatch(entry[1]) is None:
            raise TokensFileError(f"line {number} is not name:sha256hex (64 lowercase hex digits)")
        if entry[1] in entries:
            raise TokensFileError(f"line {number} names a reviewer a line before it names too")
        entries[entry[1]] = entry[2]
    return entries


def read(path: Path) -> dict[str, str]:
    """The reviewers in the tokens file at `path` (none if it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise TokensFileError(f"cannot read it: {type(exc).__name__}") from None
    return parse(text)


def add(path: Path, name: str, *, replace: bool = False) -> str:
    """Add reviewer `name` to the tokens file (created if missing) and return their new token."""
    check_name(name)
    entries = read(path)
    if name in entries and not replace:
        raise TokensFileError(f"{name} is a reviewer already: --replace gives them a new token")
    token = new_token()
    _write(path, [line for line in _lines(path) if _name_of(line) != name] + [f"{name}:{token_hash(token)}"])
    return token


def remove(path: Path, name: str) -> None:
    """Remove reviewer `name` from the tokens file: their token stops working."""
    if name not in read(path):
        raise TokensFileError(f"{name!r:.70} is not a reviewer in {path}")
    _write(path, [line for line in _lines(path) if _name_of(line) != name])


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _name_of(line: str) -> str | None:
    entry = _ENTRY.fullmatch(line.strip())
    return entry[1] if entry else None


def _write(path: Path, lines: list[str]) -> None:
    """Replace the file at once (a worker reading it sees the old or the new one), readable by its owner."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Closed:
    """The review API cannot serve anyone: why (a 503's message)."""

    message: str


class Reviewers:
    """Who a review token belongs to: the tokens file (re-read when it changes) and REVIEW_API_TOKEN."""

    def __init__(self, path: Path | None, shared: SecretStr, shared_name: str = "reviewer") -> None:
        self.path, self.shared, self.shared_name = path, shared.get_secret_value(), check_name(shared_name)
        self._seen: tuple[int, ...] | None = None
        self._hashes: dict[str, str] | Closed = {}

    def closed(self) -> Closed | None:
        """Why no token can be checked now (no reviewer set up, a broken file), or None."""
        hashes = self._current()
        if isinstance(hashes, Closed):
            return hashes
        if not hashes and not self.shared:
            return Closed(
                "the review API is closed: no reviewer is set up (add one to REVIEW_TOKENS_FILE with "
                "`python -m worker reviewers add NAME`, or set REVIEW_API_TOKEN)"
            )
        return None

    def who(self, token: str) -> str | None:
        """The reviewer whose token this is, or None. Every known token is compared, in constant
        time, whichever matches."""
        hashes = self._current()
        if isinstance(hashes, Closed) or not token:
            return None
        sent, found = token_hash(token), None
        for name, expected in hashes.items():
            if hmac.compare_digest(sent, expected):
                found = name
        if self.shared and hmac.compare_digest(token.encode(), self.shared.encode()):
            found = self.shared_name
        return found

    def _current(self) -> dict[str, str] | Closed:
        if self.path is None:
            return {}
        try:
            found = self.path.stat()
            seen: tuple[int, ...] | None = (found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino)
        except FileNotFoundError:
            seen = None
        except OSError as exc:
            return Closed(f"REVIEW_TOKENS_FILE cannot be read ({type(exc).__name__})")
        if seen != self._seen or isinstance(self._hashes, Closed):
            self._seen, self._hashes = seen, self._load()
        return self._hashes

    def _load(self) -> dict[str, str] | Closed:
        assert self.path is not None
        try:
            return read(self.path)
        except TokensFileError as exc:
            return Closed(f"REVIEW_TOKENS_FILE cannot be used ({exc}): fix it, every worker re-reads it")
