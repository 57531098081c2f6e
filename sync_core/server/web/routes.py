"""The bridge's dashboard at ``/dashboard`` (office users), rendered on the server.

- ``GET /dashboard/sign-in``, ``POST /dashboard/sign-in``, ``POST /dashboard/sign-out``;
- ``GET /dashboard?mode=M&q=TEXT``: the whole page; ``GET /dashboard/live`` the part that
  htmx polls every second (safety mode, station tallies, missing list, handhelds);
- ``POST /dashboard/safety-mode``: start a mode or end the muster under way;
- ``GET /dashboard/report?mode=M&since=T&format=csv|pdf``: the drill report;
- ``GET /dashboard/static/NAME``: the page's CSS and the vendored htmx (nothing from
  elsewhere: ships are often offline; the Content-Security-Policy allows only this server).

Reads run in FastAPI's thread pool, each with its own DuckDB cursor, so the sync endpoints
on the event loop are not held up.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from sync_core.clock import Clock
from sync_core.protocol import SafetyMode
from sync_core.server.report import csv_bytes, pdf_bytes, read_report
from sync_core.server.safety_mode import ShipMode
from sync_core.server.sign_in import Busy, Refused, SignIn, WrongCredentials
from sync_core.server.store import ServerStore
from sync_core.server.tokens import TokenRegistry
from sync_core.server.web import session
from sync_core.server.web.dashboard import SEARCH_MAX, MusterCache, data_version, read_muster

_HERE = Path(__file__).parent
_STATIC = {path.name: path for path in (_HERE / "static").iterdir() if path.suffix in (".js", ".css")}
_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
templates = Jinja2Templates(directory=_HERE / "templates")
# The safety mode a page shows: one of SafetyMode's values, or empty for the ship's own.
Chosen = Annotated[str, Query(pattern=f"^({'|'.join(['', *SafetyMode])})$")]
REPORT_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


def dashboard_router(
    store: ServerStore, tokens: TokenRegistry, ship_mode: ShipMode, clock: Clock, sign_ins: SignIn
) -> APIRouter:
    """The dashboard's routes; ``sign_ins`` is the server's sign-in check (the same lockout,
    rate limit and verification pool as the handhelds')."""
    router = APIRouter(prefix=session.PATH, include_in_schema=False)
    cache = MusterCache()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/sign-in")
    def sign_in_form(request: Request) -> HTMLResponse:
        return page(request, "sign_in.html")

    @router.post("/sign-in")
    async def sign_in(
        request: Request,
        username: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=200)],
    ) -> Response:
        session.check_form(request, None, None)
        address = request.client.host if request.client else "unknown"
        try:
            user = await sign_ins.check(username, password, address, _form_read)
        except WrongCredentials:
            return page(request, "sign_in.html", 401, error="Invalid login, please try again")
        except Refused as exc:
            return page(request, "sign_in.html", 429, error=str(exc))
        except Busy as exc:
            return page(request, "sign_in.html", 503, error=str(exc))
        if user.role != session.OFFICE_ROLE:
            return page(request, "sign_in.html", 403, error="Only the ship's office may use the dashboard")
        response = RedirectResponse(session.PATH, status_code=303)
        token = await run_in_threadpool(tokens.issue, user.username, user.role)
        session.set_cookie(response, request, token, int(tokens.lifetime))
        return response

    @router.post("/sign-out")
    def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        _, token = session.office_session(request, tokens)
        session.check_form(request, token, csrf)
        response = RedirectResponse(f"{session.PATH}/sign-in", status_code=303)
        session.clear_cookie(response)
        return response

    @router.get("")
    def dashboard(request: Request, mode: Chosen = "", q: str = Query("", max_length=SEARCH_MAX)) -> Response:
        grant, token = session.office_session(request, tokens)
        context = live_context(mode, q)
        return page(request, "dashboard.html", user=grant.username, csrf=session.csrf_token(token), **context)

    @router.get("/live")
    def live(request: Request, mode: Chosen = "", q: str = Query("", max_length=SEARCH_MAX)) -> Response:
        session.office_session(request, tokens)
        return page(request, "live.html", **live_context(mode, q))

    def live_context(choice: str, search: str) -> dict[str, Any]:
        """The live part's data: the chosen mode (empty: the ship's, else emergency drill)."""
        ship = ship_mode.current()
        mode = SafetyMode(choice) if choice else None
        shown = mode or ship.mode or SafetyMode.EMERCY
        with store.whole_ship_read() as cur:
            version = (data_version(cur), store.feed_bounds()[1])
            muster = cache.get(version, (shown, search), lambda: read_muster(cur, shown, search))
        return {"ship": ship, "muster": muster, "chosen": mode, "q": search, "modes": list(SafetyMode)}

    @router.post("/safety-mode")
    def set_safety_mode(
        request: Request, mode: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
    ) -> Response:
        grant, token = session.office_session(request, tokens)
        session.check_form(request, token, csrf)
        try:
            chosen = None if mode == "end" else SafetyMode(mode)
        except ValueError as exc:
            raise HTTPException(422, f"Unknown safety mode {mode!r:.20}") from exc
        ship_mode.set(chosen, grant.username, clock.now())
        return RedirectResponse(session.PATH, status_code=303)

    @router.get("/report")
    def report(
        request: Request,
        mode: SafetyMode,
        since: datetime | None = None,
        format: str = Query("csv", pattern="^(csv|pdf)$"),
    ) -> Response:
        session.office_session(request, tokens)
        return report_response(store, mode, since, format, clock)

    @router.get("/static/{name}")
    def static(name: str) -> FileResponse:
        if name not in _STATIC:
            raise HTTPException(404, "No such file")
        return FileResponse(_STATIC[name], headers={"Cache-Control": "max-age=3600"})

    return router


def report_response(
    store: ServerStore, mode: SafetyMode, since: datetime | None, format: str, clock: Clock
) -> Response:
    """The drill report of ``mode`` since ``since`` (naive means UTC) as a CSV or PDF download."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with store.whole_ship_read() as cur:
        report = read_report(cur, mode, since, clock.now())
    body = csv_bytes(report) if format == "csv" else pdf_bytes(report)
    filename = f"muster-{mode.value}-{report.written_at:%Y%m%dT%H%M}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(body, media_type=REPORT_TYPES[format], headers=headers)


async def _form_read() -> None:
    """The dashboard's sign-in has read its form already: nothing tells a client gone, so a
    verification it waits for always runs (the pool still bounds them)."""
    await asyncio.Event().wait()
