"""The device's HTTP client for the Mustering server (httpx, async).

Every request has a timeout (connect 5 s, read 15 s; DESIGN.md invariant 7) and the HTTP
layer never retries by itself. Transport failures, error statuses and unreadable bodies are
turned into the :mod:`sync_core.errors` tree, so callers handle one family of errors.
Bulk datasets arrive as Arrow IPC streams and are returned as ``pyarrow.Table``.
"""

from __future__ import annotations

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
)
from sync_core.protocol import (
    API_PREFIX,
    ARROW_STREAM,
    Health,
    PictureRequest,
    SignInRequest,
    SignInResponse,
    SnapshotManifest,
    wire_columns,
)

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
Model = TypeVar("Model", bound=BaseModel)


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
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=timeout
        )

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

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(self.base_url, f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        _raise_for_status(response)
        return response


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    if response.status_code == 401:
        raise InvalidLogin()
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
    try:
        table = pa.ipc.open_stream(response.content).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise MalformedResponse(f"{path} sent an unreadable Arrow stream") from exc
    if tuple(table.column_names) != columns:
        raise MalformedResponse(f"{path} sent columns {table.column_names}, expected {list(columns)}")
    return table
