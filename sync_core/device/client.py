"""The device's HTTP client for the Mustering server (httpx, async).

Every request has a timeout (connect 5 s, read 15 s; DESIGN.md invariant 7) and the HTTP
layer never retries by itself. Transport failures, error statuses and unreadable bodies are
turned into the :mod:`sync_core.errors` tree, so callers handle one family of errors.
Bulk datasets arrive as Arrow IPC streams and are returned as ``pyarrow.Table``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pyarrow as pa
import pyarrow.ipc
from pydantic import BaseModel, ValidationError

from sync_core.errors import (
    FullSyncRequired,
    InvalidLogin,
    MalformedResponse,
    ServerRejected,
    ServerUnreachable,
    SessionEnded,
)
from sync_core.protocol import (
    API_PREFIX,
    ARROW_STREAM,
    DATASETS,
    PAGE_COLUMNS,
    PAGE_CURSOR,
    PAGE_MORE,
    ChangeBatch,
    EditResult,
    Health,
    PictureRequest,
    RecordChange,
    SignInRequest,
    SignInResponse,
    SnapshotManifest,
    wire_columns,
)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# httpx times each read; a server trickling bytes never trips that. This bounds a whole
# request (connect, send, read the full answer), so a sync ends even then (invariant 7).
REQUEST_DEADLINE = 25.0


def server_address_problem(url: str) -> str | None:
    """Why ``url`` cannot be a Mustering server address (http/https, a host, a port in
    1..65535), or None when it can."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        return f"{url!r} is not a valid address: {exc}"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return f"{url!r} is not an http(s) address with a host"
    if port is not None and not 0 < port < 65536:
        return f"{url!r} has no valid port"
    return None


Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class DeltaPage:
    """One page of the change feed: the changes in ``(after, cursor]``.

    ``upserts`` holds each changed dataset's rows (wire columns), ``deletes`` its deleted
    ids; ``more`` says whether changes after ``cursor`` exist.
    """

    cursor: int
    more: bool
    upserts: dict[str, pa.Table]
    deletes: dict[str, list[str]]

    @property
    def changes(self) -> dict[str, int]:
        """Records upserted or deleted per dataset in this page."""
        keys = set(self.upserts) | set(self.deletes)
        return {
            key: (self.upserts[key].num_rows if key in self.upserts else 0) + len(self.deletes.get(key, []))
            for key in keys
        }


class ServerClient:
    """A session with one Mustering server at ``base_url`` (e.g. ``http://127.0.0.1:8000``).

    ``transport`` lets tests inject faults; ``timeout`` bounds every request. Use as an
    async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)

    async def __aenter__(self) -> ServerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def sign_in(self, username: str, password: str) -> SignInResponse:
        """Sign in and keep the bearer token for later calls.

        Raises InvalidLogin (401), ServerUnreachable, ServerRejected, MalformedResponse.
        """
        body = SignInRequest(username=username, password=password).model_dump()
        response = await self._send("POST", f"{API_PREFIX}/sign-in", json=body)
        signed_in = _model(SignInResponse, response)
        self.token = signed_in.token
        return signed_in

    def forget_token(self) -> None:
        """Drop the bearer token (sign-out); later data calls need a new sign-in."""
        self.token = None

    async def health(self) -> Health:
        """``GET /health``; an HTML page (a captive portal) raises MalformedResponse."""
        return _model(Health, await self._send("GET", "/health"))

    async def create_snapshot(self) -> SnapshotManifest:
        """Ask the server for one consistent read of every dataset (see SnapshotManifest)."""
        return _model(SnapshotManifest, await self._send("POST", f"{API_PREFIX}/snapshots"))

    async def fetch_snapshot(self, snapshot_id: str, key: str) -> pa.Table:
        """Dataset ``key`` of snapshot ``snapshot_id`` as an Arrow table with its wire columns."""
        response = await self._send("GET", f"{API_PREFIX}/snapshots/{snapshot_id}/{key}")
        return _arrow(response, wire_columns(key))

    async def fetch_pictures(self, hashes: list[str]) -> pa.Table:
        """Portraits by content hash: a table of ``sha256``, ``profile_id``, ``jpeg``.

        At most ``PICTURE_BATCH_MAX`` hashes per call. The caller checks each picture.
        """
        body = PictureRequest(sha256=hashes).model_dump()
        response = await self._send("POST", f"{API_PREFIX}/pictures", json=body)
        return _arrow(response, ("sha256", "profile_id", "jpeg"))

    async def fetch_changes(self, after: int, limit: int) -> DeltaPage:
        """The changes after cursor ``after``, at most ``limit`` of them.

        Raises FullSyncRequired (HTTP 410) when ``after`` is older than the server's
        tombstone horizon; MalformedResponse for a page that breaks the contract.
        """
        params = {"after": after, "limit": limit}
        response = await self._send("GET", f"{API_PREFIX}/changes", params=params)
        return _delta_page(_arrow(response, PAGE_COLUMNS), response.url.path, after)

    async def post_changes(self, changes: list[RecordChange]) -> EditResult:
        """Office edits, applied by the server in one transaction (role office).

        Raises ServerRejected (403 for a crew user, 422 for a rejected edit) and the rest
        of the SyncError family.
        """
        body = ChangeBatch(changes=changes).model_dump(mode="json")
        return _model(EditResult, await self._send("POST", f"{API_PREFIX}/admin/changes", json=body))

    async def put_picture(self, profile_id: str, jpeg: bytes) -> EditResult:
        """Replace profile ``profile_id``'s portrait with ``jpeg`` (role office)."""
        headers = {"content-type": "image/jpeg"}
        path = f"{API_PREFIX}/admin/pictures/{profile_id}"
        return _model(EditResult, await self._send("PUT", path, content=jpeg, headers=headers))

    async def _send(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with asyncio.timeout(REQUEST_DEADLINE):
                response = await self._http.request(method, path, headers=headers, **kwargs)
        except TimeoutError as exc:
            raise ServerUnreachable(
                self.base_url, f"no complete answer within {REQUEST_DEADLINE:.0f} s"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(self.base_url, f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        _raise_for_status(response, signing_in=path.endswith("/sign-in"))
        return response


def _raise_for_status(response: httpx.Response, signing_in: bool) -> None:
    if response.is_success:
        return
    if response.status_code == 401:
        raise InvalidLogin() if signing_in else SessionEnded()
    if response.status_code == 410:
        raise FullSyncRequired()
    raise ServerRejected(response.status_code, _detail(response))


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.reason_phrase


def _model(model: type[Model], response: httpx.Response) -> Model:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise MalformedResponse(f"{response.url.path} is not a valid {model.__name__}") from exc


def _arrow(response: httpx.Response, columns: tuple[str, ...]) -> pa.Table:
    path = response.url.path
    if response.headers.get("content-type", "").split(";")[0] != ARROW_STREAM:
        raise MalformedResponse(f"{path} did not answer with an Arrow stream")
    return _arrow_table(response.content, columns, path)


def _arrow_table(payload: bytes, columns: tuple[str, ...], where: str) -> pa.Table:
    try:
        table = pa.ipc.open_stream(payload).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise MalformedResponse(f"{where} sent an unreadable Arrow stream") from exc
    if tuple(table.column_names) != columns:
        raise MalformedResponse(f"{where} sent columns {table.column_names}, expected {list(columns)}")
    return table


def _delta_page(table: pa.Table, path: str, after: int) -> DeltaPage:
    metadata = table.schema.metadata or {}
    try:
        cursor = int(metadata[PAGE_CURSOR])
        more = metadata[PAGE_MORE] == b"1"
    except (KeyError, ValueError) as exc:
        raise MalformedResponse(f"{path} sent a page without its cursor") from exc
    if cursor < after:
        raise MalformedResponse(f"{path} moved the cursor back from {after} to {cursor}")
    upserts: dict[str, pa.Table] = {}
    deletes: dict[str, list[str]] = {}
    for key, rows, deleted in zip(*(table.column(c).to_pylist() for c in PAGE_COLUMNS), strict=True):
        if key not in DATASETS:
            raise MalformedResponse(f"{path} sent changes of an unknown dataset {key!r}")
        if rows is not None:
            upserts[key] = _arrow_table(rows, wire_columns(key), f"{path} ({key})")
        if deleted:
            deletes[key] = deleted
    return DeltaPage(cursor=cursor, more=more, upserts=upserts, deletes=deletes)
