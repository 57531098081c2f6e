"""The device's HTTP client for the Mustering server (httpx, async).

Every request has a timeout (connect 5 s, read 15 s; docs/architecture.md, 'Every request has a
timeout') and the HTTP layer never retries by itself. Transport failures, error statuses and
unreadable bodies are turned into the :mod:`sync_core.errors` tree, so callers handle one family of
errors. Bulk data arrives as Arrow IPC streams (:mod:`~sync_core.device.arrow_rows`): a
snapshot's datasets and portraits are handed over a record batch at a time while they arrive,
a delta page whole.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeAlias, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from sync_core.device.arrow_rows import ArrowRows, ArrowStream
from sync_core.device.body_pipe import BodyPipe, read_while_arriving
from sync_core.device.delta_page import DeltaPage
from sync_core.errors import (
    FullSyncRequired,
    InvalidLogin,
    MalformedResponse,
    RenewalRefused,
    ServerRejected,
    ServerUnreachable,
    SessionEnded,
)
from sync_core.muster import MISSING_LIMIT, SEARCH_LIMIT, Counts, Person, Place, Standing, card_number
from sync_core.protocol import (
    API_PREFIX,
    ARROW_STREAM,
    DATASETS,
    PAGE_COLUMNS,
    PAGE_CURSOR,
    PAGE_MORE,
    REGISTRATION_BATCH_MAX,
    ChangeBatch,
    EditResult,
    GeneralParameter,
    Health,
    PictureRequest,
    RecordChange,
    Registration,
    RegistrationReceipt,
    RenewRequest,
    SafetyMode,
    SafetyModeChange,
    ShipSafetyMode,
    SignInRequest,
    SignInResponse,
    SnapshotManifest,
    wire_columns,
)

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# httpx times each read; a server trickling bytes never trips that. This bounds a whole
# request (connect, send, read the full answer), so a sync ends even then (docs/architecture.md,
# 'Every request has a timeout').
REQUEST_DEADLINE = 25.0
# What a person waits for at most: an interactive request (sign-in, live counts, the upload
# before Sync Now) gives up after this many seconds; the work is already kept on the device.
INTERACTIVE_DEADLINE = 3.0
_SIGN_IN_PATHS = frozenset({f"{API_PREFIX}/sign-in", f"{API_PREFIX}/session/renew"})
# A busy server (503) is asked again after its Retry-After, scaled by a random factor in
# this range so that a burst of handhelds does not come back all at once.
RETRY_JITTER = (0.25, 1.0)
# A CA certificate file (PEM) that signs the server's certificate, for a ship whose server
# certificate is not signed by a CA in the system store (``muster ... --ca-file``).
CA_FILE_ENV = "MUSTER_CA_FILE"


@functools.cache
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The TLS settings that verify an https server: its certificate must chain to
    ``ca_file`` (PEM) when given, else to the system store, and name the server's host.
    Made once per file (making one costs ~40 ms). Raises OSError / ssl.SSLError for an
    unreadable or invalid ``ca_file``."""
    return ssl.create_default_context(cafile=ca_file)


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
Parsed = TypeVar("Parsed")
T = TypeVar("T")
# Reads a successful answer's body (see ServerClient._request).
BodyRead: TypeAlias = Callable[[httpx.Response], Awaitable[object]]
_REGISTRATIONS = TypeAdapter(list[Registration])
_PLACES = TypeAdapter(list[Place])
_PEOPLE = TypeAdapter(list[Person])
_PERSON = TypeAdapter(Person)
_STANDING = TypeAdapter(Standing | None)
_COUNTS = TypeAdapter(Counts)


class ServerClient:
    """A session with one Mustering server at ``base_url`` (e.g. ``http://127.0.0.1:8000``).

    ``transport`` lets tests inject faults; ``timeout`` bounds every request. An https
    server's certificate is verified against ``ca_file`` (default ``$MUSTER_CA_FILE``), else
    the system store (:func:`tls_context`). Use as an async context manager, or call
    :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None
        self.credential: RenewRequest | None = None
        self._renewal = asyncio.Lock()
        verify = tls_context(ca_file or os.environ.get(CA_FILE_ENV) or None)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=timeout, verify=verify
        )

    async def __aenter__(self) -> ServerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def sign_in(
        self, username: str, password: str, device_id: str | None = None, within: float = REQUEST_DEADLINE
    ) -> SignInResponse:
        """Sign in and keep the bearer token for later calls; with ``device_id``, also the
        refresh token the server issues for this device (kept in memory only), with which
        an ended session is renewed without a person (see :meth:`renew`).

        A busy server (503) is asked again after its ``Retry-After`` with jitter
        (``RETRY_JITTER``) for up to ``within`` seconds in all. Raises InvalidLogin (401),
        ServerUnreachable (also when still busy or unanswered after ``within``),
        ServerRejected (e.g. 429 for a locked username), MalformedResponse.
        """
        body = SignInRequest(username=username, password=password, device_id=device_id).model_dump()
        try:
            async with asyncio.timeout(within):
                response = await self._until_not_busy("POST", f"{API_PREFIX}/sign-in", json=body)
        except TimeoutError as exc:
            raise ServerUnreachable(self.base_url, f"no sign-in answer within {within:.0f} s") from exc
        signed_in = _model(SignInResponse, response)
        self.token = signed_in.token
        self.credential = None
        if device_id is not None and signed_in.refresh_token is not None:
            self.credential = RenewRequest(
                username=signed_in.username, device_id=device_id, refresh_token=signed_in.refresh_token
            )
        return signed_in

    def forget_token(self) -> None:
        """Drop the bearer token and the refresh token (sign-out); later data calls need a
        new sign-in."""
        self.token = None
        self.credential = None

    async def renew(self) -> SignInResponse:
        """Renew the session with the refresh token: a new bearer token, kept.

        Raises RenewalRefused (401; the refresh token is dropped) or, without a refresh
        token, at once; ServerUnreachable and the rest of the SyncError family otherwise.
        """
        if self.credential is None:
            raise RenewalRefused()
        body = self.credential.model_dump()
        try:
            response = await self._send("POST", f"{API_PREFIX}/session/renew", json=body)
        except SessionEnded as exc:
            self.token, self.credential = None, None
            raise RenewalRefused() from exc
        renewed = _model(SignInResponse, response)
        self.token = renewed.token
        return renewed

    async def _renewed(self, used: str | None) -> None:
        """After a 401 to a request sent with ``used``: renew the session, exactly once for
        all the requests that saw it end together (single flight: the others wait and use
        the new token). Raises RenewalRefused and :meth:`renew`'s errors."""
        async with self._renewal:
            if self.token != used:  # renewed (or refused) while this request waited
                if self.token is None:
                    raise RenewalRefused()
                return
            await self.renew()

    async def health(self) -> Health:
        """``GET /health``; an HTML page (a captive portal) raises MalformedResponse."""
        return _model(Health, await self._send("GET", "/health"))

    async def create_snapshot(self) -> SnapshotManifest:
        """Ask the server for one consistent read of every dataset (see SnapshotManifest)."""
        return _model(SnapshotManifest, await self._send("POST", f"{API_PREFIX}/snapshots"))

    async def fetch_snapshot(self, snapshot_id: str, key: str, stage: Callable[[ArrowStream], T]) -> T:
        """Dataset ``key`` of snapshot ``snapshot_id`` handed to ``stage`` as a stream of its
        record batches (wire columns; columns it does not know are left unread); ``stage``'s
        result. ``stage`` runs in a worker thread while the body arrives, each batch decoded
        as it completes (:mod:`~sync_core.device.body_pipe`), so a big dataset is never
        whole in memory. Raises MalformedResponse for a stream that does not open or lacks a
        column (see :func:`~sync_core.device.arrow_rows.check_columns`), and from ``stage``'s
        reads for a batch that does not decode."""
        where = f"{API_PREFIX}/snapshots/{snapshot_id}/{key}"
        read = functools.partial(_batch_reader, wire_columns(key), where, stage)
        return await self._send_arrow("GET", where, lambda chunks: read_while_arriving(chunks, read))

    async def fetch_pictures(self, hashes: list[str], take: Callable[[ArrowStream], T]) -> T:
        """Portraits by content hash, handed to ``take`` as a stream of record batches of
        ``sha256``, ``profile_id``, ``jpeg`` (the server sends about 1 MB a batch); ``take``'s
        result. As :meth:`fetch_snapshot`, ``take`` runs in a worker thread while the body
        arrives, so a request holds about one batch, not all it asked for; the same errors.

        At most ``PICTURE_BATCH_MAX`` hashes per call. ``take`` checks each picture.
        """
        body = PictureRequest(sha256=hashes).model_dump()
        path = f"{API_PREFIX}/pictures"
        read = functools.partial(_batch_reader, ("sha256", "profile_id", "jpeg"), path, take)
        return await self._send_arrow(
            "POST", path, lambda chunks: read_while_arriving(chunks, read), json=body
        )

    async def fetch_changes(self, after: int, limit: int) -> DeltaPage:
        """The changes after cursor ``after``, at most ``limit`` of them.

        Raises FullSyncRequired (HTTP 410) when ``after`` is older than the server's
        tombstone horizon; MalformedResponse for a page that breaks the contract.
        """
        params = {"after": after, "limit": limit}
        path = f"{API_PREFIX}/changes"
        body = await self._send_arrow("GET", path, _whole, params=params)
        return _delta_page(ArrowStream(body, PAGE_COLUMNS, path), path, after)

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

    async def safety_mode(self) -> ShipSafetyMode:
        """The ship's safety mode as the office set it."""
        return _model(ShipSafetyMode, await self._send("GET", f"{API_PREFIX}/safety-mode"))

    async def set_safety_mode(self, mode: SafetyMode | None) -> ShipSafetyMode:
        """Start ``mode`` ship-wide, or end the muster under way with None (role office)."""
        body = SafetyModeChange(mode=mode).model_dump(mode="json")
        return _model(ShipSafetyMode, await self._send("PUT", f"{API_PREFIX}/admin/safety-mode", json=body))

    async def report(self, mode: SafetyMode, since: datetime | None, format: str) -> bytes:
        """The drill report of ``mode`` counting registrations from ``since`` (aware; None:
        all) as ``format`` (``csv`` or ``pdf``) bytes (role office)."""
        params = {"format": format} | ({"since": since.isoformat()} if since else {})
        response = await self._send("GET", f"{API_PREFIX}/reports/{mode.value}", params=params)
        return response.content

    async def post_registrations(self, items: list[Registration]) -> RegistrationReceipt:
        """Upload 1 to ``REGISTRATION_BATCH_MAX`` registrations in one request; the receipt
        answers each item by id (see RegistrationReceipt).

        Never retried here: the outbox retries, and a replay is answered "already applied"
        (docs/architecture.md, 'Every registration is uploaded exactly once'). A request that fails
        as a whole raises the SyncError family, and then any item may or may not have been applied.
        Raises ValueError for an empty or oversize batch.
        """
        if not 0 < len(items) <= REGISTRATION_BATCH_MAX:
            raise ValueError(f"a batch holds 1 to {REGISTRATION_BATCH_MAX} registrations, not {len(items)}")
        body = {"registrations": _REGISTRATIONS.dump_python(items, mode="json")}
        response = await self._send("POST", f"{API_PREFIX}/registrations", json=body)
        return _model(RegistrationReceipt, response)

    async def places(self, mode: SafetyMode) -> list[Place]:
        """The muster stations (lifeboats for abandon ship) on the server, as muster.places."""
        return _parsed(_PLACES, await self._send("GET", f"{API_PREFIX}/musters/{mode.value}/places"))

    async def find_card(self, card: str) -> Person | None:
        """The profile with board card ``card`` on the server, or None (HTTP 404).

        Raises BadCard before any request when ``card`` cannot be a card number.
        """
        path = f"{API_PREFIX}/profiles/by-card/{_segment(card_number(card))}"
        response = await self._unless_missing(path)
        return _parsed(_PERSON, response) if response else None

    async def search(self, text: str, limit: int = SEARCH_LIMIT) -> list[Person]:
        """Profiles matching ``text`` on the server (as muster.search), at most ``limit`` (<= 50)."""
        params = {"search": text, "limit": limit}
        return _parsed(_PEOPLE, await self._send("GET", f"{API_PREFIX}/profiles", params=params))

    async def standing(self, profile_id: str, mode: SafetyMode) -> Standing | None:
        """Where ``profile_id`` stands registered in ``mode`` on the server, or None."""
        path = f"{API_PREFIX}/musters/{mode.value}/standing/{_segment(profile_id)}"
        return _parsed(_STANDING, await self._send("GET", path))

    async def counts(self, mode: SafetyMode, place: str, missing_limit: int = MISSING_LIMIT) -> Counts:
        """Live counts of ``place`` in ``mode`` over every device's registrations.

        Raises ServerRejected (404) for a place the server does not know.
        """
        path = f"{API_PREFIX}/musters/{mode.value}/places/{_segment(place)}/counts"
        params = {"missing_limit": missing_limit}
        return _parsed(_COUNTS, await self._send("GET", path, params=params))

    async def parameter(self, name: str) -> str | None:
        """General parameter ``name``'s value on the server, or None (HTTP 404)."""
        response = await self._unless_missing(f"{API_PREFIX}/parameters/{_segment(name)}")
        return _model(GeneralParameter, response).value if response else None

    async def _unless_missing(self, path: str) -> httpx.Response | None:
        """``GET path``, or None when the server answers 404."""
        try:
            return await self._send("GET", path)
        except ServerRejected as exc:
            if exc.status_code == 404:
                return None
            raise

    async def _until_not_busy(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``_send``, asked again while the server answers 503 (busy); the caller bounds it."""
        while True:
            try:
                return await self._send(method, path, **kwargs)
            except ServerRejected as exc:
                if exc.status_code != 503:
                    raise
                await asyncio.sleep((exc.retry_after or 1.0) * random.uniform(*RETRY_JITTER))

    async def _send(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        response, _ = await self._exchange(method, path, headers, None, **kwargs)
        return response

    async def _send_arrow(
        self, method: str, path: str, read: Callable[[AsyncIterator[bytes]], Awaitable[T]], **kwargs: Any
    ) -> T:
        """What ``read`` makes of the chunks of an Arrow answer's body, as they arrive (never
        kept by the Response: it sits in a reference cycle, so a body it kept lived until the
        next garbage collection, and a full sync's portraits piled up ~60 MB here). An answer
        of another type raises MalformedResponse before its body is read."""

        async def arrow(response: httpx.Response) -> T:
            if response.headers.get("content-type", "").split(";")[0] != ARROW_STREAM:
                raise MalformedResponse(f"{response.url.path} did not answer with an Arrow stream")
            return await read(response.aiter_bytes())

        _, body = await self._exchange(method, path, None, arrow, **kwargs)
        return cast(T, body)

    async def _exchange(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None,
        read: BodyRead | None,
        **kwargs: Any,
    ) -> tuple[httpx.Response, object]:
        """The server's answer to one request (and what ``read`` made of its body, see
        :meth:`_request`), raised as the SyncError family when it is not a success. A 401 to
        a data request of a session with a refresh token renews the session
        (:meth:`_renewed`) and sends the request once more."""
        used = self.token
        response, body = await self._request(method, path, headers, read, **kwargs)
        if response.status_code == 401 and self.credential is not None and path not in _SIGN_IN_PATHS:
            await self._renewed(used)
            response, body = await self._request(method, path, headers, read, **kwargs)
        _raise_for_status(response, signing_in=path.endswith("/sign-in"))
        return response, body

    async def _request(
        self, method: str, path: str, headers: dict[str, str] | None, read: BodyRead | None, **kwargs: Any
    ) -> tuple[httpx.Response, object]:
        """Send a request and read its answer within ``REQUEST_DEADLINE`` (``read``'s work on
        the body included); a successful answer's body goes to ``read`` (its result returned
        apart; the Response keeps no body) when given, else into the Response."""
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body: object = None
        try:
            async with asyncio.timeout(REQUEST_DEADLINE):
                request = self._http.build_request(method, path, headers=headers, **kwargs)
                response = await self._http.send(request, stream=True)
                try:
                    if read is not None and response.is_success:
                        body = await read(response)
                    else:
                        await response.aread()
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise ServerUnreachable(
                self.base_url, f"no complete answer within {REQUEST_DEADLINE:.0f} s"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(self.base_url, f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        return response, body


async def _whole(chunks: AsyncIterator[bytes]) -> bytes:
    """A body's ``chunks`` joined: a small answer (a delta page)."""
    return b"".join([chunk async for chunk in chunks])


def _raise_for_status(response: httpx.Response, signing_in: bool) -> None:
    if response.is_success:
        return
    if response.status_code == 401:
        raise InvalidLogin() if signing_in else SessionEnded()
    if response.status_code == 410:
        raise FullSyncRequired()
    raise ServerRejected(response.status_code, _detail(response), _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (0 to 3600), or None when absent or not a
    number of seconds."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


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


def _parsed(adapter: TypeAdapter[Parsed], response: httpx.Response) -> Parsed:
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        raise MalformedResponse(f"{response.url.path} sent a body of the wrong shape") from exc


def _segment(text: str) -> str:
    """``text`` quoted as one URL path segment."""
    return quote(text, safe="")


def _batch_reader(
    columns: tuple[str, ...], where: str, take: Callable[[ArrowStream], T], pipe: BodyPipe
) -> T:
    """``take``'s result on the Arrow stream arriving in ``pipe``, read a record batch at a
    time, of which ``columns`` are read. Raises MalformedResponse for a stream that does not
    open or lacks a column."""
    return take(ArrowStream(pipe, columns, where))


def _delta_page(stream: ArrowStream, path: str, after: int) -> DeltaPage:
    """The page ``stream`` holds: its cursor and more flag (schema metadata), then per
    changed dataset its rows (an Arrow stream of their own) and deleted ids."""
    metadata = stream.metadata
    try:
        cursor = int(metadata[PAGE_CURSOR])
        more = metadata[PAGE_MORE] == b"1"
    except (KeyError, ValueError) as exc:
        raise MalformedResponse(f"{path} sent a page without its cursor") from exc
    if cursor < after:
        raise MalformedResponse(f"{path} moved the cursor back from {after} to {cursor}")
    upserts: dict[str, ArrowRows] = {}
    deletes: dict[str, list[str]] = {}
    for key, rows, deleted in stream.read_all().tuples():
        if key not in DATASETS:
            raise MalformedResponse(f"{path} sent changes of an unknown dataset {key!r}")
        if rows is not None:
            upserts[key] = ArrowStream(rows, wire_columns(key), f"{path} ({key})").read_all()
        if deleted:
            deletes[key] = deleted
    return DeltaPage(cursor=cursor, more=more, upserts=upserts, deletes=deletes)
