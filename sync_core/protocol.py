"""The wire contract shared by the device and the server.

Bulk data travels as Arrow IPC streams (media type :data:`ARROW_STREAM`); pydantic models
carry the control messages. Both ``sync_core.device`` and ``sync_core.server`` import this
module and never each other (docs/architecture.md, 'Who may import whom').

The six datasets and their minimum columns are those of docs/architecture.md, 'The six datasets';
the first column of each is the record's id. Column types are DuckDB type names; the fixture
generator writes the same columns to Parquet.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

API_PREFIX: Final = "/api/v1"
ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"

# A delta page holds at most this many changes (the device asks for fewer; a parameter).
CHANGES_PAGE_MAX: Final = 10_000
# Schema metadata keys of a delta page (an Arrow stream, see ChangePage on the server).
PAGE_CURSOR: Final = b"cursor"
PAGE_MORE: Final = b"more"
# Columns of a delta page: one row per dataset with changes; ``rows`` is an Arrow IPC stream
# of the upserted rows (wire columns), ``deletes`` the deleted ids.
PAGE_COLUMNS: Final = ("key", "rows", "deletes")

# Pictures are fetched by content hash in batches of at most this many hashes.
PICTURE_BATCH_MAX: Final = 500
# A portrait is about 3 KB; anything over this is refused as oversize (docs/architecture.md, 'Bad
# input fails alone').
PICTURE_MAX_BYTES: Final = 256 * 1024
JPEG_MAGIC: Final = b"\xff\xd8\xff"  # a JPEG starts with its start-of-image marker
JPEG_END: Final = b"\xff\xd9"  # and a whole one ends with its end-of-image marker


def picture_problem(sha256: str, jpeg: bytes | None) -> str | None:
    """Why a fetched portrait must be refused, or None when it is good.

    Refused: missing bytes, over ``PICTURE_MAX_BYTES``, not starting with the JPEG SOI
    marker, not ending with its EOI marker (truncated), or bytes whose SHA-256 differs from
    the hash the row names. Checked by the device on every portrait it fetches and by the
    server's import (a full decode, which the office's edits do, costs a millisecond or two a
    portrait).
    """
    if jpeg is None:
        return "no bytes"
    if len(jpeg) > PICTURE_MAX_BYTES:
        return f"oversize ({len(jpeg)} bytes)"
    if not jpeg.startswith(JPEG_MAGIC):
        return "not a JPEG"
    if not jpeg.endswith(JPEG_END):
        return "truncated JPEG"
    if hashlib.sha256(jpeg).hexdigest() != sha256:
        return "content does not match its hash"
    return None


DATASET_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "users": (
        ("username", "VARCHAR"),
        ("display_name", "VARCHAR"),
        ("role", "VARCHAR"),
        ("password_hash", "VARCHAR"),
        ("key_slot", "VARCHAR"),
    ),
    "muster_stations": (
        ("code", "VARCHAR"),
        ("name", "VARCHAR"),
        ("type", "VARCHAR"),
        ("deck", "INTEGER"),
        ("capacity", "INTEGER"),
    ),
    "lifeboats": (
        ("code", "VARCHAR"),
        ("description", "VARCHAR"),
        ("type", "VARCHAR"),
        ("capacity", "INTEGER"),
        ("side", "VARCHAR"),
        ("launch_sequence", "INTEGER"),
    ),
    "parameters": (
        ("name", "VARCHAR"),
        ("value", "VARCHAR"),
        ("type", "VARCHAR"),
    ),
    "reservations": (
        ("profile_id", "VARCHAR"),
        ("profile_type", "VARCHAR"),
        ("first_name", "VARCHAR"),
        ("last_name", "VARCHAR"),
        ("gender", "VARCHAR"),
        ("birth_date", "DATE"),
        ("pax_class", "VARCHAR"),
        ("cabin", "VARCHAR"),
        ("manning_number", "VARCHAR"),
        ("board_card_number", "VARCHAR"),
        ("booking_number", "VARCHAR"),
        ("passport_masked", "VARCHAR"),
        ("nationality", "VARCHAR"),
        ("embark_date", "DATE"),
        ("debark_date", "DATE"),
        ("movement_status", "VARCHAR"),
        ("muster_station", "VARCHAR"),
        ("lifeboat", "VARCHAR"),
        ("special_needs", "VARCHAR"),
        ("picture_sha256", "VARCHAR"),
    ),
    "pictures": (
        ("sha256", "VARCHAR"),
        ("profile_id", "VARCHAR"),
        ("jpeg", "BLOB"),
    ),
}

# Dataset keys in sync order, and their labels as the product's Synchronization page names them.
DATASET_LABELS: Final[dict[str, str]] = {
    "users": "User information",
    "muster_stations": "Muster station",
    "lifeboats": "Lifeboat",
    "parameters": "General parameters",
    "reservations": "Profile reservation",
    "pictures": "Profile picture",
}
DATASETS: Final[tuple[str, ...]] = tuple(DATASET_LABELS)

# In a snapshot the pictures dataset is served without its bytes, which are fetched by hash.
PICTURE_INDEX_COLUMNS: Final = ("sha256", "profile_id")


def id_column(key: str) -> str:
    """The id column of dataset ``key`` (its first column). Raises KeyError for an unknown key."""
    return DATASET_COLUMNS[key][0][0]


def wire_columns(key: str) -> tuple[str, ...]:
    """Column names of dataset ``key`` as served in a snapshot (pictures without ``jpeg``)."""
    if key == "pictures":
        return PICTURE_INDEX_COLUMNS
    return tuple(name for name, _ in DATASET_COLUMNS[key])


class SyncState(StrEnum):
    """The product's four status words (docs/architecture.md, 'Statuses')."""

    NOT_STARTED = "Not started"
    IN_PROGRESS = "In progress"
    SUCCESS = "Success"
    FAILED = "Failed"


class SignInRequest(BaseModel):
    """Body of ``POST /api/v1/sign-in``."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    # A device that gives its id is issued a refresh token bound to the user and the device.
    device_id: str | None = Field(default=None, max_length=64)


class SignInResponse(BaseModel):
    """Answer to a good sign-in (and to a renewal): a bearer token and the server's identity.

    ``server_id`` names the server's store; the device binds its cursor to it
    (docs/architecture.md, 'Stores and processes'). ``expires_in`` is in seconds.
    ``refresh_token`` is issued when the sign-in named a ``device_id`` (see
    :class:`RenewRequest`). ``key_slot`` is the user's key slot (docs/security.md), None for a
    user whose password predates them.
    """

    token: str
    server_id: str
    username: str
    display_name: str
    role: str
    expires_in: int
    refresh_token: str | None = None
    key_slot: str | None = None


class RenewRequest(BaseModel):
    """Body of ``POST /api/v1/session/renew``: a device renews its session with the refresh
    token it was issued at sign-in (bound to ``username`` and ``device_id``). The answer is
    a :class:`SignInResponse` with a new access token and the same refresh token, or HTTP
    401 ("sign in again") when the credential is refused (unknown, revoked, the user
    deleted, demoted or their password changed)."""

    username: str = Field(min_length=1, max_length=64)
    device_id: str = Field(min_length=1, max_length=64)
    refresh_token: str = Field(min_length=1, max_length=256)


class SnapshotManifest(BaseModel):
    """Answer to ``POST /api/v1/snapshots``: one consistent read of every dataset.

    ``cursor`` is the server change sequence the read was taken at; ``counts`` gives each
    dataset's record count (pictures: profiles with a portrait). The datasets themselves are
    fetched from ``GET /api/v1/snapshots/{snapshot_id}/{key}`` as Arrow IPC streams.
    """

    snapshot_id: str
    server_id: str
    cursor: int
    counts: dict[str, int]


SHA256_PATTERN: Final = "^[0-9a-f]{64}$"  # a content hash as hashlib's hexdigest writes it


class PictureRequest(BaseModel):
    """Body of ``POST /api/v1/pictures``: content hashes (hex SHA-256) to fetch."""

    sha256: list[Annotated[str, Field(pattern=SHA256_PATTERN)]] = Field(max_length=PICTURE_BATCH_MAX)


class RecordChange(BaseModel):
    """One office edit: ``set`` fields of record ``id`` of dataset ``key`` (creating it when
    missing), or ``delete`` it. Values are stored as DuckDB casts them to the column type."""

    key: str
    id: str = Field(min_length=1, max_length=64)
    op: Literal["set", "delete"]
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _known_key(cls, key: str) -> str:
        if key not in DATASET_COLUMNS:
            raise ValueError(f"unknown dataset {key!r}")
        return key


class ChangeBatch(BaseModel):
    """Body of ``POST /api/v1/admin/changes``: edits applied in one transaction."""

    changes: list[RecordChange] = Field(min_length=1, max_length=CHANGES_PAGE_MAX)


class EditResult(BaseModel):
    """Answer to an office edit: the server cursor after it."""

    cursor: int


class ComponentState(StrEnum):
    """State of one server component in ``/health``."""

    UP = "up"
    DOWN = "down"


class Health(BaseModel):
    """Body of ``GET /health`` (docs/architecture.md, 'Server health')."""

    api: ComponentState
    db: ComponentState
    webapp: ComponentState
    server_id: str | None
    # The server store's engine ("duckdb" or "postgresql"); None from servers before it.
    db_engine: str | None = None
    # The ship's safety mode, so an online handheld follows it from its health probe
    # (None: no muster under way, a server that predates ship-wide modes, or a mode this
    # device does not know, from a newer server: that is no reason to call the server down).
    safety_mode: SafetyMode | None = None

    @field_validator("safety_mode", mode="before")
    @classmethod
    def _known_mode(cls, value: Any) -> Any:
        return value if value in {mode.value for mode in SafetyMode} else None


class ErrorBody(BaseModel):
    """Body of every 4xx / 5xx answer: a short human sentence."""

    detail: str


# -- mustering: registrations (device -> server) ---------------------------------------

# Registrations travel in batches of at most this many (an outbox upload, a replay).
REGISTRATION_BATCH_MAX: Final = 500
STATION_CODE_MAX: Final = 6


class SafetyMode(StrEnum):
    """The safety modes a muster runs in (general parameter ``safety_mode``)."""

    EMERCY = "EMERCY"
    GENASS = "GENASS"
    ASHSHP = "ASHSHP"

    @property
    def label(self) -> str:
        """The words crew see: ``Emergency drill``, ``General assembly``, ``Abandon ship``."""
        return _SAFETY_MODE_LABELS[self]

    @property
    def by_lifeboat(self) -> bool:
        """True when people muster at their lifeboat (abandon ship), not their muster station."""
        return self is SafetyMode.ASHSHP


_SAFETY_MODE_LABELS: Final = {
    SafetyMode.EMERCY: "Emergency drill",
    SafetyMode.GENASS: "General assembly",
    SafetyMode.ASHSHP: "Abandon ship",
}


class RegistrationAction(StrEnum):
    """What a registration records."""

    REGISTER = "register"
    UNREGISTER = "unregister"


class ShipSafetyMode(BaseModel):
    """The ship-wide safety mode the office set (``GET /api/v1/safety-mode``): ``mode`` None
    when no muster is under way; ``since`` when the current state began (aware UTC, None
    before the office ever set one); ``set_by`` the office user who set it."""

    mode: SafetyMode | None
    since: AwareDatetime | None
    set_by: str | None


class SafetyModeChange(BaseModel):
    """Body of ``PUT /api/v1/admin/safety-mode``: the mode to start, or None to end it."""

    mode: SafetyMode | None


class Registration(BaseModel):
    """One register / unregister event, as captured on a device (docs/architecture.md, 'The six
    datasets'). ``registration_id`` is a client-generated UUIDv7, the upload's idempotency key;
    ``registered_at`` is device time with its UTC offset (display and ordering among one person's
    events only). Exactly one of ``muster_station`` / ``lifeboat`` is set: the lifeboat for abandon
    ship, the muster station otherwise.
    """

    registration_id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    profile_id: str = Field(min_length=1, max_length=64)
    action: RegistrationAction
    safety_mode: SafetyMode
    muster_station: str | None = Field(default=None, min_length=1, max_length=STATION_CODE_MAX)
    lifeboat: str | None = Field(default=None, min_length=1, max_length=STATION_CODE_MAX)
    registered_at: AwareDatetime
    username: str = Field(min_length=1, max_length=64)
    device_id: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_place(self) -> Registration:
        place, other = (
            ("lifeboat", "muster_station")
            if self.safety_mode.by_lifeboat
            else (
                "muster_station",
                "lifeboat",
            )
        )
        if getattr(self, place) is None or getattr(self, other) is not None:
            where = place.replace("_", " ")
            raise ValueError(f"{self.safety_mode.label} registrations name a {where} only")
        return self

    @property
    def place(self) -> str:
        """The muster station or lifeboat code the registration is at."""
        return self.lifeboat if self.safety_mode.by_lifeboat else self.muster_station  # type: ignore[return-value]


class RegistrationBatch(BaseModel):
    """Body of ``POST /api/v1/registrations``. Items are checked one by one on the server
    (a bad item is refused alone, even one that is not an object), so they arrive as plain
    JSON values."""

    registrations: list[Any] = Field(min_length=1, max_length=REGISTRATION_BATCH_MAX)


class ItemOutcome(StrEnum):
    """What the server did with one uploaded registration."""

    APPLIED = "applied"
    ALREADY_APPLIED = "already applied"
    REJECTED = "rejected"
    ERROR = "error"


class RegistrationResult(BaseModel):
    """The server's answer for one item: ``status`` is an HTTP status for that item alone
    (200 applied or already applied, 4xx rejected for good, 5xx failed now, retry later)
    and ``reason`` says why it was not applied."""

    registration_id: str
    outcome: ItemOutcome
    status: int
    reason: str | None = None


class RegistrationReceipt(BaseModel):
    """Answer to ``POST /api/v1/registrations``: one result per item the server could name.
    Only items named APPLIED or ALREADY_APPLIED leave the device's outbox (docs/architecture.md,
    'Every registration is uploaded exactly once')."""

    results: list[RegistrationResult]


class GeneralParameter(BaseModel):
    """Answer to ``GET /api/v1/parameters/{name}``: one general parameter's value (text)."""

    name: str
    value: str
