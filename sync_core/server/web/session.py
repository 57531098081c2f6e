"""The dashboard's browser session: a cookie holding a server session token.

The token is one the server's :class:`TokenRegistry` issued (so it expires and survives a
restart like a handheld's), sent back only in an HttpOnly, SameSite=Strict cookie scoped to
``/dashboard``. Every form that changes something carries a CSRF token derived from the
session token (HMAC-SHA-256), and a POST whose ``Origin`` is another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, Response

from sync_core.server.tokens import Grant, TokenRegistry

COOKIE = "muster_dashboard"
PATH = "/dashboard"
OFFICE_ROLE = "office"


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session ``session_token`` (hex)."""
    return hmac.new(session_token.encode(), b"muster dashboard form", hashlib.sha256).hexdigest()


def set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    """Hand ``token`` to the browser (Secure when the request came over HTTPS)."""
    response.set_cookie(
        COOKIE, token, max_age=max_age, path=PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip


def clear_cookie(response: Response) -> None:
    """Make the browser forget the session cookie."""
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def office_session(request: Request, tokens: TokenRegistry) -> tuple[Grant, str]:
    """The office grant and token of the request's cookie.

    Raises HTTPException 303 to the sign-in form without a live session, 403 for a user who
    is not office.
    """
    token = request.cookies.get(COOKIE)
    grant = tokens.resolve(token) if token else None
    if grant is None or token is None:
        raise HTTPException(303, "Sign in first", headers={"Location": f"{PATH}/sign-in"})
    if grant.role != OFFICE_ROLE:
        raise HTTPException(403, "Only the ship's office may use the dashboard")
    return grant, token


def check_form(request: Request, session_token: str | None, sent_csrf: str | None) -> None:
    """Refuse (HTTPException 403) a form POST from another site, or, when ``session_token`` is
    given, one without that session's CSRF token."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(403, "This form must be sent from the dashboard itself")
    if session_token is not None and not hmac.compare_digest(csrf_token(session_token), sent_csrf or ""):
        raise HTTPException(403, "The form has expired: reload the dashboard and try again")
