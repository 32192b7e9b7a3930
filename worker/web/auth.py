"""Bearer-token protection for the review API (`REVIEW_API_TOKEN`).

No token configured: every protected route answers 503 rather than run open. A missing or wrong
token: 401. The comparison takes the same time whatever the token sent, and neither the token nor what
was sent ever appears in a response or a log line.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust import web
from pydantic import SecretStr

Handler = Callable[..., Awaitable[web.Response]]


def denial(headers: Mapping[str, str], token: SecretStr) -> tuple[int, str] | None:
    """Why a request with these headers may not use the review API (status, message), or None."""
    expected = token.get_secret_value()
    if not expected:
        return 503, "the review API is disabled: set REVIEW_API_TOKEN on the worker"
    scheme, _, sent = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not sent.strip():
        return 401, "send the review token as: Authorization: Bearer <token>"
    if not hmac.compare_digest(sent.strip().encode(), expected.encode()):
        return 401, "wrong review token"
    return None


def requires_token(token: SecretStr) -> Callable[[Handler], Handler]:
    """Decorate a view method so that it runs only for requests carrying the review token."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(view: web.View, request: web.Request, *args: Any, **kwargs: Any) -> web.Response:
            refused = denial(request.headers, token)
            if refused is not None:
                status, message = refused
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return view.json({"error": message}, status=status, headers=headers)
            return await handler(view, request, *args, **kwargs)

        return guarded

    return decorate
