"""The reference Mustering server as a FastAPI app over a :class:`ServerStore`.

Endpoints (prefix ``/api/v1`` for data; every data endpoint needs a bearer token):

- ``POST /sign-in``: argon2id check of the user's password on a bounded pool, with lockout
  and rate limit (``sign_in.py``); a token and the server id.
- ``POST /session/renew``: a new access token for a device's refresh token (issued at a
  sign-in that names the device; no password); 401 when it is refused. Office edits that
  delete a user or change their role or password revoke the user's tokens and device
  credentials.
- ``POST /snapshots``: one consistent read of every dataset (the manifest and its cursor);
  ``GET /snapshots/{id}/{key}`` then serves each dataset as an Arrow IPC stream.
- ``POST /pictures``: portraits by content hash, in batches, as an Arrow IPC stream sent as
  it is read from the portrait files (``portraits.py``).
- ``GET /changes?after=N&limit=M``: one page of the change feed (an Arrow IPC stream, see
  ``PAGE_COLUMNS``); HTTP 410 when ``after`` is older than the tombstone horizon.
- ``POST /admin/changes``, ``PUT /admin/pictures/{profile_id}``: office edits (role office).
- ``POST /registrations``: a batch of device registrations, answered item by item
  (``registrations.py``).
- Muster lookups for a device in online-only mode and live station counts (every device's
  registrations), answered by the shared rules of ``sync_core.muster``:
  ``GET /musters/{mode}/places``, ``GET /musters/{mode}/places/{code}/counts?missing_limit=N``,
  ``GET /musters/{mode}/standing/{profile_id}``, ``GET /profiles/by-card/{card}``,
  ``GET /profiles?search=TEXT&limit=N``, ``GET /parameters/{name}``.
- ``GET /health`` (open): API, DB and web app states and the server id (docs/architecture.md,
  'Server health').
- ``GET /``: the server's status page (the "web app" component of ``/health``).
- The bridge: the ship's safety mode and the drill report (``bridge_api.py``) and the
  office's dashboard at ``/dashboard`` (``web/``).
"""

from __future__ import annotations

import html
import io
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.ipc
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from sync_core import muster
from sync_core.clock import Clock, SystemClock
from sync_core.errors import BadCard, CursorTooOld, EditRejected, StillNamed
from sync_core.muster import Counts, Person, Place, Standing
from sync_core.protocol import (
    API_PREFIX,
    ARROW_STREAM,
    CHANGES_PAGE_MAX,
    DATASETS,
    PAGE_COLUMNS,
    PAGE_CURSOR,
    PAGE_MORE,
    PICTURE_MAX_BYTES,
    ChangeBatch,
    ComponentState,
    EditResult,
    GeneralParameter,
    Health,
    PictureRequest,
    RegistrationBatch,
    RegistrationReceipt,
    RenewRequest,
    SafetyMode,
    SignInRequest,
    SignInResponse,
    SnapshotManifest,
)
from sync_core.server.bridge_api import bridge_api
from sync_core.server.changes import ChangePage, empty_page, read_page
from sync_core.server.edits import apply_changes, replace_picture
from sync_core.server.empty_polls import EmptyPolls
from sync_core.server.portraits import PICTURES_SCHEMA
from sync_core.server.registrations import RegistrationLog, orphan_counts
from sync_core.server.safety_mode import ShipMode
from sync_core.server.sign_in import Busy, ClientGone, Refused, SignIn, SignInLimits, WrongCredentials
from sync_core.server.store import ServerStore, ServerUser, Snapshot
from sync_core.server.tokens import Grant, TokenRegistry, users_to_revoke
from sync_core.server.web.routes import dashboard_router

log = logging.getLogger(__name__)
SNAPSHOTS_KEPT = 8
PAGES_KEPT = 64
# Encoded snapshots are also kept to this many bytes in all (the newest always), so the
# cache of a big ship whose data keeps changing does not hold eight copies of it.
SNAPSHOT_BYTES_KEPT = 48 * 1024 * 1024
# A request body over this is refused with 413 as it arrives (declared or streamed), before
# a JSON body is buffered whole; the largest legitimate one, a batch of CHANGES_PAGE_MAX
# office edits, stays well under it.
REQUEST_BODY_MAX = 16 * 1024 * 1024
ARROW_BATCH_ROWS = 8192
_bearer = HTTPBearer(auto_error=False)


def arrow_view(table: pa.Table, compression: str | None = "lz4") -> memoryview:
    """``table`` as an Arrow IPC stream (lz4-compressed buffers unless told otherwise), in
    record batches of at most ``ARROW_BATCH_ROWS`` rows: a reader can take one at a time.
    A view of Arrow's own buffer: a copy into ``bytes`` raised the server's peak by a
    snapshot's size."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=ARROW_BATCH_ROWS)
    return memoryview(sink.getvalue())


def arrow_bytes(table: pa.Table, compression: str | None = "lz4") -> bytes:
    """:func:`arrow_view` as ``bytes``."""
    return arrow_view(table, compression).tobytes()


def arrow_chunks(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """``batches`` as an uncompressed Arrow IPC stream of ``schema``, one chunk of bytes per
    batch (the schema's with the first), each encoded only when the one before was sent."""
    sink = _Chunks()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


class _Chunks(io.RawIOBase):
    """A write-only file whose bytes written so far are taken away by :meth:`take`."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken, self._parts = b"".join(self._parts), []
        return taken


@dataclass(frozen=True)
class EncodedSnapshot:
    """A snapshot ready to serve: its id, cursor, counts and each dataset's Arrow stream."""

    snapshot_id: str
    cursor: int
    counts: dict[str, int]
    payloads: dict[str, memoryview]


class SnapshotCache:
    """The last few encoded snapshots, by id and by cursor (oldest dropped first): at most
    ``SNAPSHOTS_KEPT``, and ``SNAPSHOT_BYTES_KEPT`` bytes unless the newest alone is larger.

    While nothing changes on the server, every device's full sync is served the same
    encoded snapshot: the read and the encoding (~40 ms for the icon preset) happen once.
    """

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, EncodedSnapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._taking = threading.Lock()

    def current(self, latest: Callable[[], int], take: Callable[[], Snapshot]) -> EncodedSnapshot:
        """The snapshot at the store's ``latest()`` cursor: kept, else ``take()`` encoded and
        kept. One is taken at a time: when every device of the ship asks at once (after the
        alarm, or with the office editing meanwhile), the others wait for it and use it,
        instead of each reading and encoding the whole ship beside the rest."""
        found = self.at(latest())
        if found is not None:
            return found
        with self._taking:
            return self.at(latest()) or self.add(take())

    def at(self, cursor: int) -> EncodedSnapshot | None:
        """The snapshot taken at ``cursor``, if kept."""
        with self._lock:
            return next((snap for snap in self._by_id.values() if snap.cursor == cursor), None)

    def add(self, snapshot: Snapshot) -> EncodedSnapshot:
        """Encode and keep ``snapshot`` under a new id."""
        encoded = EncodedSnapshot(
            snapshot_id=uuid.uuid4().hex,
            cursor=snapshot.cursor,
            counts={key: table.num_rows for key, table in snapshot.tables.items()},
            payloads={key: arrow_view(table) for key, table in snapshot.tables.items()},
        )
        with self._lock:
            self._by_id[encoded.snapshot_id] = encoded
            while len(self._by_id) > SNAPSHOTS_KEPT or (
                len(self._by_id) > 1 and self._bytes() > SNAPSHOT_BYTES_KEPT
            ):
                self._by_id.popitem(last=False)
        return encoded

    def _bytes(self) -> int:
        return sum(len(payload) for snap in self._by_id.values() for payload in snap.payloads.values())

    def get(self, snapshot_id: str, key: str) -> memoryview | None:
        """The encoded dataset, or None when the snapshot or key is unknown."""
        with self._lock:
            snapshot = self._by_id.get(snapshot_id)
        return snapshot.payloads.get(key) if snapshot else None


class PageCache:
    """Encoded change pages by ``(after, limit, latest)``, the newest ``PAGES_KEPT``.

    After an office edit every device polls from the same cursor: the page is read and
    encoded once, not once per device. ``latest`` is the feed's last committed change as
    the poll found it; the page stored under it was read no earlier, so it is never older
    than its key (a page read later is as valid: it holds every change up to its cursor).
    """

    def __init__(self) -> None:
        self._pages: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int, int]) -> bytes | None:
        """The page kept under ``key``, or None."""
        with self._lock:
            return self._pages.get(key)

    def put(self, key: tuple[int, int, int], page: bytes) -> None:
        """Keep ``page`` under ``key``, dropping the oldest beyond ``PAGES_KEPT``."""
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)


def _read_page(store: ServerStore, pages: PageCache, key: tuple[int, int, int]) -> bytes:
    """The encoded page after ``after`` of ``key`` (``(after, limit, latest)``, see
    PageCache), read and kept (in a worker thread: it queries the store)."""
    after, limit, _ = key
    page = page_bytes(read_page(store, after, limit))
    pages.put(key, page)
    return page


async def _grant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Grant:
    """The grant behind the request's bearer token; 401 when missing, unknown or expired.
    (async: a memory lookup, not worth FastAPI's thread hop for a sync dependency)"""
    tokens: TokenRegistry = request.app.state.tokens
    found = tokens.resolve(credentials.credentials) if credentials else None
    if found is None:
        raise HTTPException(401, "Sign in first", headers={"WWW-Authenticate": "Bearer"})
    return found


Signed = Annotated[Grant, Depends(_grant)]


async def _office(grant: Signed) -> Grant:
    """The grant of an office user; 403 for anyone else."""
    if grant.role != "office":
        raise HTTPException(403, "Only the ship's office may change data")
    return grant


Office = Annotated[Grant, Depends(_office)]


def page_bytes(page: ChangePage) -> bytes:
    """A change page as an Arrow IPC stream: one row per dataset with changes."""
    keys = [key for key in DATASETS if key in page.upserts or key in page.deletes]
    schema = pa.schema(
        [("key", pa.string()), ("rows", pa.binary()), ("deletes", pa.list_(pa.string()))],
        metadata={PAGE_CURSOR: str(page.cursor), PAGE_MORE: "1" if page.more else "0"},
    )
    columns = {
        "key": keys,
        "rows": [arrow_bytes(page.upserts[key]) if key in page.upserts else None for key in keys],
        "deletes": [page.deletes.get(key, []) for key in keys],
    }
    assert tuple(columns) == PAGE_COLUMNS
    return arrow_bytes(pa.table(columns, schema=schema))


def empty_page_bytes(after: int) -> bytes:
    """The encoded answer to a poll with nothing after ``after``."""
    return page_bytes(ChangePage(cursor=after, more=False, upserts={}, deletes={}))


def create_app(
    store: ServerStore,
    clock: Clock | None = None,
    sign_in_limits: SignInLimits | None = None,
    *,
    api_docs: bool = False,
    token_lifetime: float = 12 * 3600,
) -> FastAPI:
    """The FastAPI app serving ``store`` (already imported). Closes the store on shutdown.
    ``sign_in_limits``: the verification pool and rate limit (see ``sign_in.py``).
    ``api_docs`` serves ``/docs``, ``/redoc`` and ``/openapi.json`` (off by default: they
    map the whole attack surface for anyone on the ship's network). Access tokens last
    ``token_lifetime`` seconds of ``clock``."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        sign_ins.close()
        store.close()
        log.info("server store closed")

    app = FastAPI(
        title="Muster server",
        # no OpenTelemetry here: checking for it cost every request a few microseconds
        telemetry={"tracing": False, "metrics": False, "logs": False},
        lifespan=lifespan,
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
        openapi_url="/openapi.json" if api_docs else None,
    )
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=REQUEST_BODY_MAX)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    clock = clock or SystemClock()
    tokens = app.state.tokens = TokenRegistry(clock, store, token_lifetime)
    app.add_middleware(EmptyPolls, store=store, tokens=tokens, empty_page=empty_page_bytes)
    snapshots = SnapshotCache()
    pages = PageCache()
    registrations = RegistrationLog(store)
    sign_ins = SignIn(store, clock, sign_in_limits or SignInLimits())

    async def signed_in(user: ServerUser, refresh_token: str | None) -> SignInResponse:
        return SignInResponse(
            token=await run_in_threadpool(tokens.issue, user.username, user.role),
            server_id=store.server_id or "",
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            expires_in=int(tokens.lifetime),
            refresh_token=refresh_token,
            key_slot=user.key_slot,
        )

    @app.post(f"{API_PREFIX}/sign-in", response_model=SignInResponse)
    async def sign_in(body: SignInRequest, request: Request) -> SignInResponse:
        user = await _checked(sign_ins, body, request)
        refresh = None
        if body.device_id:
            refresh = await run_in_threadpool(tokens.issue_refresh, user.username, body.device_id)
        return await signed_in(user, refresh)

    @app.post(f"{API_PREFIX}/session/renew", response_model=SignInResponse)
    async def renew(body: RenewRequest) -> SignInResponse:
        user = await run_in_threadpool(store.user, body.username)
        valid = await run_in_threadpool(
            tokens.refresh_valid, body.username, body.device_id, body.refresh_token
        )
        if user is None or not valid:
            raise HTTPException(401, "Session renewal refused: sign in again")
        return await signed_in(user, body.refresh_token)

    @app.post(f"{API_PREFIX}/snapshots", response_model=SnapshotManifest)
    def create_snapshot(_: Signed) -> SnapshotManifest:
        encoded = snapshots.current(store.latest, store.snapshot)
        return SnapshotManifest(
            snapshot_id=encoded.snapshot_id,
            server_id=store.server_id or "",
            cursor=encoded.cursor,
            counts=encoded.counts,
        )

    @app.get(f"{API_PREFIX}/snapshots/{{snapshot_id}}/{{key}}")
    def get_snapshot(snapshot_id: str, key: str, _: Signed) -> Response:
        payload = snapshots.get(snapshot_id, key)
        if payload is None:
            raise HTTPException(404, f"No snapshot {snapshot_id!r} with dataset {key!r}")
        return Response(payload, media_type=ARROW_STREAM)

    @app.post(f"{API_PREFIX}/pictures")
    def get_pictures(body: PictureRequest, _: Signed) -> Response:
        chunks = arrow_chunks(PICTURES_SCHEMA, store.pictures(body.sha256))
        return StreamingResponse(chunks, media_type=ARROW_STREAM)

    @app.get(f"{API_PREFIX}/changes")
    async def get_changes(
        _: Signed, after: int = Query(ge=0), limit: int = Query(ge=1, le=CHANGES_PAGE_MAX)
    ) -> Response:
        # An empty poll (most of them) is answered from memory, mostly before FastAPI
        # (empty_polls.py); a page others asked for already, from the page cache.
        try:
            empty = empty_page(store, after)
            if empty is not None:
                return Response(page_bytes(empty), media_type=ARROW_STREAM)
            key = (after, limit, store.feed_bounds()[1])
            page = pages.get(key) or await run_in_threadpool(_read_page, store, pages, key)
        except CursorTooOld as exc:
            raise HTTPException(410, f"Full sync required: {exc}") from exc
        return Response(page, media_type=ARROW_STREAM)

    @app.post(f"{API_PREFIX}/admin/changes", response_model=EditResult)
    def post_changes(body: ChangeBatch, _: Office) -> EditResult:
        try:
            cursor = apply_changes(store, body.changes)
        except EditRejected as exc:
            raise HTTPException(409 if isinstance(exc, StillNamed) else 422, str(exc)) from exc
        for username in users_to_revoke(body.changes):
            tokens.revoke_user(username)
        return EditResult(cursor=cursor)

    @app.put(f"{API_PREFIX}/admin/pictures/{{profile_id}}", response_model=EditResult)
    async def put_picture(profile_id: str, request: Request, _: Office) -> EditResult:
        jpeg = await _bounded_body(request, PICTURE_MAX_BYTES)
        try:
            cursor = await run_in_threadpool(replace_picture, store, profile_id, jpeg)
        except EditRejected as exc:
            raise HTTPException(422, str(exc)) from exc
        return EditResult(cursor=cursor)

    @app.post(f"{API_PREFIX}/registrations", response_model=RegistrationReceipt)
    def post_registrations(body: RegistrationBatch, grant: Signed) -> RegistrationReceipt:
        return registrations.apply(body.registrations, grant.username, clock.now())

    _add_muster_lookups(app, store)
    ship_mode = ShipMode(store.db)
    app.include_router(bridge_api(store, ship_mode, clock, _grant, _office))
    app.include_router(dashboard_router(store, tokens, ship_mode, clock, sign_ins))

    @app.get("/health", response_model=Health)
    def health() -> Health:
        db = ComponentState.UP if store.ping() else ComponentState.DOWN
        return Health(
            api=ComponentState.UP,
            db=db,
            webapp=_webapp_state(store),
            server_id=store.server_id,
            db_engine=store.engine,
            safety_mode=ship_mode.current().mode,
        )

    @app.get("/", response_class=HTMLResponse)
    def status_page() -> str:
        return render_status_page(store)

    return app


def _add_muster_lookups(app: FastAPI, store: ServerStore) -> None:
    """The read-only muster endpoints (see the module docstring); every one needs a token."""

    @app.get(f"{API_PREFIX}/musters/{{mode}}/places", response_model=list[Place])
    def get_places(mode: SafetyMode, _: Signed) -> list[Place]:
        with store.cursor() as cur:
            return muster.places(cur, mode)

    @app.get(f"{API_PREFIX}/musters/{{mode}}/places/{{code}}/counts", response_model=Counts)
    def get_counts(
        mode: SafetyMode,
        code: str,
        _: Signed,
        missing_limit: int = Query(muster.MISSING_LIMIT, ge=0, le=1000),
    ) -> Counts:
        with store.whole_ship_read() as cur:
            if code not in {place.code for place in muster.places(cur, mode)}:
                kind = "lifeboat" if mode.by_lifeboat else "muster station"
                raise HTTPException(404, f"There is no {kind} {code!r:.20}")
            return muster.counts(cur, mode, code, missing_limit)

    @app.get(f"{API_PREFIX}/musters/{{mode}}/standing/{{profile_id:path}}", response_model=Standing | None)
    def get_standing(mode: SafetyMode, profile_id: str, _: Signed) -> Standing | None:
        with store.cursor() as cur:
            return muster.standing(cur, profile_id, mode)

    @app.get(f"{API_PREFIX}/profiles/by-card/{{card:path}}", response_model=Person)
    def get_profile_by_card(card: str, _: Signed) -> Person:
        try:
            number = muster.card_number(card)
        except BadCard as exc:
            raise HTTPException(422, str(exc)) from exc
        with store.cursor() as cur:
            person = muster.find_card(cur, number)
        if person is None:
            raise HTTPException(404, "unknown card")
        return person

    @app.get(f"{API_PREFIX}/profiles", response_model=list[Person])
    def search_profiles(
        _: Signed, search: str = Query(max_length=100), limit: int = Query(muster.SEARCH_LIMIT, ge=1, le=50)
    ) -> list[Person]:
        with store.cursor() as cur:
            return muster.search(cur, search, limit)

    @app.get(f"{API_PREFIX}/parameters/{{name:path}}", response_model=GeneralParameter)
    def get_parameter(name: str, _: Signed) -> GeneralParameter:
        with store.cursor() as cur:
            value = muster.parameter(cur, name)
        if value is None:
            raise HTTPException(404, f"No general parameter {name!r:.80}")
        return GeneralParameter(name=name, value=value)


async def _checked(sign_ins: SignIn, body: SignInRequest, request: Request) -> ServerUser:
    """The user signing in, or the HTTP error: 401 wrong credentials, 429 locked or
    rate-limited, 503 busy (both with Retry-After)."""
    address = request.client.host if request.client else "unknown"
    try:
        return await sign_ins.check(body.username, body.password, address, lambda: _disconnected(request))
    except WrongCredentials as exc:
        raise HTTPException(401, "Invalid login, please try again") from exc
    except Refused as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    except Busy as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    except ClientGone as exc:
        raise HTTPException(503, "the client went away") from exc


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (declared or
    streamed: a chunked upload has no content-length)."""
    too_big = HTTPException(413, f"A portrait may be at most {limit} bytes")
    if int(request.headers.get("content-length") or 0) > limit:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 naming what is wrong and where, without echoing the (possibly huge) input."""
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()[:5])
    return JSONResponse({"detail": problems[:1000]}, status_code=422)


def render_status_page(store: ServerStore) -> str:
    """The server's status page (HTML): its id, each dataset's record count, and how many
    registrations name a profile or place no longer in the ship's data (kept as recorded)."""
    counts = store.counts()
    rows = "".join(f"<tr><td>{html.escape(key)}</td><td>{counts[key]}</td></tr>" for key in DATASETS)
    server_id = html.escape(store.server_id or "not imported")
    profiles, places = orphan_counts(store)
    return (
        "<!doctype html><html><head><title>Muster server</title></head><body>"
        f"<h1>Muster server</h1><p>Server id: {server_id}</p>"
        f"<table><tr><th>dataset</th><th>records</th></tr>{rows}</table>"
        f"<p>Registrations of a profile no longer in the ship's data: {profiles}</p>"
        f"<p>Registrations at a muster station or lifeboat no longer in the ship's data: {places}</p>"
        "</body></html>"
    )


def _webapp_state(store: ServerStore) -> ComponentState:
    try:
        render_status_page(store)
    except Exception:  # noqa: BLE001 - any failure to render means the web app is down
        log.exception("status page failed")
        return ComponentState.DOWN
    return ComponentState.UP
