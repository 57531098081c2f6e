"""Every error Muster raises, in one tree.

    MusterError
    ├── StoreInUse              the device store's file is held by another process
    ├── StoreUnusable           the file is not a DuckDB store, or cannot be created there
    ├── UnknownPlace            no muster station / lifeboat has that code in the data at hand
    ├── BadCard                 text that cannot be a board card number
    ├── ShipDataError           the ship data to import lacks a dataset or a column (server)
    ├── EditRejected            an office edit names an unknown record or carries a bad value (server)
    │   └── StillNamed          a delete of a station or lifeboat that profiles still name (server)
    ├── CursorTooOld            a delta asked from outside the change feed's horizon (server)
    ├── ServerStartError        a server child process did not announce its address
    └── SyncError               a sign-in or sync step failed; ``str()`` is the UI's status line
        ├── ServerUnreachable   connect failure or timeout (names the server address)
        ├── ServerRejected      the server answered 4xx/5xx other than the ones below
        ├── MalformedResponse   the server answered 2xx with a body we cannot read
        ├── FullSyncRequired    HTTP 410: the cursor is older than the tombstone horizon
        ├── StoreLocked         the device's sealed data cannot be opened: no key (sign in) or another key
        └── SignInError         signing in, or keeping a session, failed
            ├── InvalidLogin    the server (or the synced users, offline) refused the credentials
            ├── SignInLocked    too many failed sign-ins in a row: the username is locked a while
            └── SessionEnded    the server no longer accepts the session's token (restart, expiry)
                └── RenewalRefused  ... and refused to renew it: a person signs in again

The UI maps each class to one status line; the CLI prints ``str(error)`` in its JSON. The
device and the server both raise from here; neither imports the other for an error.
"""

from __future__ import annotations


class MusterError(Exception):
    """Root of all Muster errors."""


class StoreInUse(MusterError):
    """The device store is open in another process (DuckDB allows one process per file)."""

    def __init__(self, path: str, holder: str = "the running app") -> None:
        super().__init__(f"Store {path} is in use by {holder}")


class StoreUnusable(MusterError):
    """The store file cannot be opened or created (not a DuckDB file, a missing folder...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Store {path} cannot be opened: {reason}")


class UnknownPlace(MusterError):
    """Registration was asked for at a muster station or lifeboat code the data lacks."""

    def __init__(self, code: str, kind: str) -> None:
        super().__init__(f"There is no {kind} {code!r}")


class BadCard(MusterError):
    """Text that cannot be a board card number (the reader misfired, or a stray key)."""


class ShipDataError(MusterError):
    """The ship data directory is missing a dataset or has the wrong columns."""


class EditRejected(MusterError):
    """An edit names an unknown dataset, field or record, or carries a bad value or picture."""


class StillNamed(EditRejected):
    """A delete of a muster station or lifeboat that profiles or a general parameter still
    name (HTTP 409): move them elsewhere first."""


class CursorTooOld(MusterError):
    """The cursor is older than the tombstone horizon (or ahead of this store): the device
    must run a full sync."""


class ServerStartError(MusterError):
    """The server exited or stayed silent before announcing its address."""


class SyncError(MusterError):
    """A sign-in or sync step failed; the message is fit to show a crew member."""


class ServerUnreachable(SyncError):
    """No answer from the server at ``url`` (connect error or timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Server at {url} is unreachable: {reason}")
        self.url = url


class SignInError(SyncError):
    """Signing in, or keeping the session signed in, failed."""


class InvalidLogin(SignInError):
    """Wrong username or password (the product's wording)."""

    def __init__(self) -> None:
        super().__init__("Invalid login, please try again")


class SignInLocked(SignInError):
    """``username`` failed to sign in too often in a row; no sign-in is tried for
    ``minutes_left`` more minutes (general parameters ``max_failed_sign_ins``,
    ``lockout_minutes``)."""

    def __init__(self, username: str, minutes_left: int) -> None:
        unit = "minute" if minutes_left == 1 else "minutes"
        super().__init__(f"Too many failed sign-ins for {username}: try again in {minutes_left} {unit}")
        self.username = username
        self.minutes_left = minutes_left


class SessionEnded(SignInError):
    """HTTP 401 on a data request: the token is unknown to the server (it restarted) or expired."""

    def __init__(self) -> None:
        super().__init__("The server ended this session (restarted or timed out): sign out and sign in again")


class ServerRejected(SyncError):
    """The server answered with an error status other than 401 / 410; ``retry_after``: the
    seconds its ``Retry-After`` header asked for (503 busy, 429 refused), else None."""

    def __init__(self, status_code: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"Server refused the request (HTTP {status_code}): {detail}")
        self.status_code = status_code
        self.retry_after = retry_after


class MalformedResponse(SyncError):
    """A 2xx answer whose body does not match the wire contract (docs/architecture.md, 'Bad input
    fails alone')."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Malformed response from server: {what}")


class FullSyncRequired(SyncError):
    """HTTP 410: the device's cursor is older than the server's tombstone horizon."""

    def __init__(self) -> None:
        super().__init__("Cursor too old: a full sync is required")


class RenewalRefused(SessionEnded):
    """The server refused to renew the session with the device's refresh token (the user was
    deleted, demoted, their password changed, or the credential revoked): a person must sign
    in again. Nothing queued on the device is lost."""

    def __init__(self) -> None:
        SyncError.__init__(self, "The server refused to renew this session: sign in again")


class StoreLocked(SyncError):
    """The device store's sealed personal data cannot be read or written: no crew member has
    signed in since the process started (the data key is in memory only), or the data was
    sealed under another key (docs/security.md)."""

    def __init__(self, reason: str = "sign in to open the device's data") -> None:
        super().__init__(f"The device's data is locked: {reason}")
