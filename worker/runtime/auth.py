"""Bearer-token protection for the review API: each token names its reviewer (`worker.tokens`).

No reviewer set up (no `REVIEW_TOKENS_FILE` entry, no `REVIEW_API_TOKEN`), or a tokens file that
cannot be read: every protected route answers 503 rather than run open. A missing or unknown token:
401. The comparison takes the same time whatever the token sent, and neither a token, its hash, nor
what was sent ever appears in a response or a log line.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust import web

from worker.settings import Settings
from worker.tokens import Reviewers

Handler = Callable[..., Awaitable[web.Response]]


def reviewers_from(settings: Settings) -> Reviewers:
    """The reviewers the settings name: REVIEW_TOKENS_FILE, and REVIEW_API_TOKEN as REVIEW_API_REVIEWER."""
    return Reviewers(settings.review_tokens_file, settings.review_api_token, settings.review_api_reviewer)


def reviewer_for(headers: Mapping[str, str], reviewers: Reviewers) -> str | tuple[int, str]:
    """The reviewer a request's token belongs to, or why it may not use the review API (status, message)."""
    closed = reviewers.closed()
    if closed is not None:
        return 503, closed.message
    scheme, _, sent = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not sent.strip():
        return 401, "send your review token as: Authorization: Bearer <token>"
    found = reviewers.who(sent.strip())
    return found if found is not None else (401, "unknown review token")


def requires_token(reviewers: Reviewers, *, as_reviewer: bool = False) -> Callable[[Handler], Handler]:
    """Decorate a view method so that it runs only for requests carrying a reviewer's token; with
    `as_reviewer`, the handler gets that reviewer's name as its `reviewer` argument."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(view: web.View, request: web.Request, *args: Any, **kwargs: Any) -> web.Response:
            found = reviewer_for(request.headers, reviewers)
            if isinstance(found, tuple):
                status, message = found
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return view.json({"error": message}, status=status, headers=headers)
            if as_reviewer:
                kwargs["reviewer"] = found
            return await handler(view, request, *args, **kwargs)

        return guarded

    return decorate
