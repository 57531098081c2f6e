"""The ``muster`` command line (docs/architecture.md, 'Command line': a stable interface).

Heavy libraries (Textual, DuckDB, pyarrow, httpx) are imported inside the commands so
``muster --help`` stays cheap (importing Textual takes about 380 ms, pyarrow 190 ms, httpx
165 ms, DuckDB 120 ms).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from muster_tui.terminal.profiles import PROFILE_ENV, PROFILE_NAMES

if TYPE_CHECKING:
    from sync_core.device import SyncStatus

T = TypeVar("T")
DEFAULT_DEMO_PRESET = "oasis"
DEMO_SEED = 1
PASSWORD_ENV = "MUSTER_PASSWORD"
F = TypeVar("F", bound=Callable[..., object])


def password_options(command: F) -> F:
    """``--password-file FILE`` and ``--password P`` (shown in ``ps``: warned against); the
    command gets ``password_file`` and ``password_given`` for :func:`_password` (docs/security.md)."""
    command = click.option(
        "--password-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help=f"Read the password from FILE's first line (else ${PASSWORD_ENV}, else a prompt).",
    )(command)
    return click.option("--password", "password_given", help="Discouraged: other users see it in `ps`.")(
        command
    )


def _password(given: str | None, file: Path | None) -> str:
    """The password of a command: ``--password-file``'s first line, else ``--password`` (with a
    warning on stderr), else ``$MUSTER_PASSWORD``, else asked for on the terminal (not echoed)."""
    if file is not None:
        return (file.read_text(encoding="utf-8").splitlines() or [""])[0]
    if given is not None:
        click.echo(
            f"warning: --password shows in `ps` to every user of this machine; use ${PASSWORD_ENV}, "
            "--password-file or the prompt",
            err=True,
        )
        return given
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    return str(click.prompt("Password", hide_input=True, err=True))


def _trust(_: click.Context, __: click.Parameter, ca_file: Path | None) -> Path | None:
    """``--ca-file``: every client of this process verifies the server against it."""
    if ca_file is not None:
        from sync_core.device.client import CA_FILE_ENV

        os.environ[CA_FILE_ENV] = str(ca_file)
    return ca_file


ca_file_option = click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    callback=_trust,
    expose_value=False,
    help="CA certificate (PEM) of the https server (or $MUSTER_CA_FILE); default: the system store.",
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail to stderr.")
def main(verbose: bool) -> None:
    """Muster: electronic mustering for passenger ships."""
    from sync_core.files import private_umask

    private_umask()  # stores, logs and ship data are for this user only (docs/security.md)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)


@main.group()
def fixtures() -> None:
    """Generate deterministic ship data."""


@fixtures.command("ship")
@click.option("--preset", type=click.Choice(["small", "oasis", "icon"]), help="A ship of the presets.")
@click.option(
    "--profiles", type=int, help="Or a ship of this many profiles (100 to 60,000), in icon's proportions."
)
@click.option(
    "--portrait-kb",
    type=int,
    help="ID photos (300x400 JPEG) of about this many KB (10 to 80); default: small ones.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def fixtures_ship(
    preset: str | None, profiles: int | None, portrait_kb: int | None, seed: int, out: Path
) -> None:
    """Write OUT/<key>.parquet for the six datasets; same seed, same bytes."""
    from fixtures.ship import Preset, generate_ship

    if (preset is None) == (profiles is None):
        raise click.UsageError("give either --preset or --profiles")
    try:
        ship = Preset.scaled(profiles) if profiles is not None else str(preset)
        counts = generate_ship(ship, seed, out, portrait_kb=portrait_kb)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    described = {"preset": preset} if profiles is None else {"profiles": profiles}
    click.echo(
        json.dumps({**described, "portrait_kb": portrait_kb, "seed": seed, "out": str(out), "counts": counts})
    )


@main.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--db",
    "db_path",
    required=True,
    help="A DuckDB file (FILE.duckdb), or postgresql://USER@HOST:PORT/DB "
    "(a password from PGPASSWORD or ~/.pgpass, never on the command line).",
)
@click.option(
    "--portraits",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the portrait files (default: DB.portraits beside a DuckDB file; "
    "needed with PostgreSQL).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--sign-in-workers",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Threads checking passwords (0: one per core).",
)
@click.option(
    "--sign-in-queue",
    type=click.IntRange(0),
    default=256,
    show_default=True,
    help="Sign-ins that may wait for a thread; more are answered 503 with Retry-After.",
)
@click.option(
    "--certfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve HTTPS: certificate chain (PEM).",
)
@click.option(
    "--keyfile", type=click.Path(dir_okay=False, path_type=Path), help="The certificate's private key (PEM)."
)
@click.option("--api-docs", is_flag=True, help="Serve /docs, /redoc and /openapi.json (off by default).")
@click.option("--exit-with-parent", is_flag=True, hidden=True, help="Stop when the parent process dies.")
@click.option(
    "--token-lifetime",
    type=click.FloatRange(min=1),
    default=12 * 3600,
    show_default=True,
    help="Seconds an access token lasts; devices renew theirs with their refresh token.",
)
def server(
    data_dir: Path,
    db_path: str,
    portraits: Path | None,
    host: str,
    port: int,
    sign_in_workers: int,
    sign_in_queue: int,
    certfile: Path | None,
    keyfile: Path | None,
    api_docs: bool,
    exit_with_parent: bool,
    token_lifetime: float,
) -> None:
    """The Mustering server; imports DATA when DB is new. Prints {"url", "server_id"} once listening."""
    from sync_core.errors import MusterError
    from sync_core.server import serve
    from sync_core.server.serve import Tls
    from sync_core.server.sign_in import SignInLimits

    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    tls = Tls(certfile, keyfile) if certfile and keyfile else None
    limits = SignInLimits(sign_in_workers, sign_in_queue)
    try:
        serve(
            data_dir, db_path, host, port,
            with_parent=exit_with_parent, sign_in_limits=limits, tls=tls, api_docs=api_docs,
            token_lifetime=token_lifetime, portraits=portraits,
        )  # fmt: skip
    except (MusterError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


profile_option = click.option(
    "--profile",
    type=click.Choice(PROFILE_NAMES),
    default=None,
    help=f"Terminal profile (default: ${PROFILE_ENV}, else auto): full; ansi16 (16 colours); "
    "serial (ASCII, 8 colours, only changed cells sent); auto picks by TERM, NO_COLOR and line speed.",
)


@main.command()
@ca_file_option
@click.option("--server", "server_url", required=True, help="e.g. http://127.0.0.1:8000")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@profile_option
@click.option("--web", is_flag=True, help="Serve the app to a browser (a tablet) instead of this terminal.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --web: the address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="With --web: the port to listen on.")
def app(server_url: str, db_path: Path, profile: str | None, web: bool, host: str, port: int) -> None:
    """The Textual app on the device store DB (with --web, in a browser at http://HOST:PORT)."""
    if not web:
        _run_app(server_url, db_path, profile)
        return
    from muster_tui.web_app import serve_in_browser
    from sync_core.device.client import server_address_problem

    problem = server_address_problem(server_url)
    if problem:
        raise click.BadParameter(problem, param_hint="--server")
    serve_in_browser(server_url, db_path, host, port)


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-data"),
    show_default=True,
)
@click.option(
    "--preset", type=click.Choice(["small", "oasis", "icon"]), default=DEFAULT_DEMO_PRESET, show_default=True
)
@profile_option
def demo(data_dir: Path, preset: str, profile: str | None) -> None:
    """Server + app on the default ship; quitting the app stops the server."""
    from sync_core.key_slots import SHIP_KEY_FILE
    from sync_core.server.process import ServerProcess

    ship = data_dir / f"ship-{preset}"
    if not (ship / SHIP_KEY_FILE).is_file():  # none yet, or one made before key slots
        click.echo(f"Generating the {preset} ship into {ship} (once)...")
        from fixtures.ship import generate_ship

        for old in (f"server-{preset}.duckdb", f"server-{preset}.duckdb.wal"):  # of the older ship
            (data_dir / old).unlink(missing_ok=True)
        generate_ship(preset, DEMO_SEED, ship)
    with ServerProcess(ship, data_dir / f"server-{preset}.duckdb", data_dir / "server.log") as url:
        click.echo(f"Mustering server at {url}. Demo sign-in: demo / demo (crew), office / office (office).")
        _run_app(url, data_dir / "device.duckdb", profile)


@main.command()
@ca_file_option
@click.option("--server", "server_url", required=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--user", "username", required=True)
@password_options
@click.option("--full", is_flag=True, help="Force a full sync.")
@click.option(
    "--watch",
    is_flag=True,
    help="Keep the device current until SIGINT / SIGTERM, through server outages (one JSON line per run).",
)
def sync(
    server_url: str,
    db_path: Path,
    username: str,
    password_given: str | None,
    password_file: Path | None,
    full: bool,
    watch: bool,
) -> None:
    """Headless sign-in + sync; prints one JSON object per run, exits 1 if any status is Failed.
    On a terminal, a full sync's progress goes to stderr (the JSON stays on stdout)."""
    password = _password(password_given, password_file)
    from sync_core.device import DeviceStore, SyncStatus
    from sync_core.device.client import server_address_problem
    from sync_core.device.headless import sync_forever, sync_once
    from sync_core.errors import MusterError
    from sync_core.protocol import SyncState

    try:
        problem = server_address_problem(server_url)
        if problem:
            raise click.BadParameter(problem)
        store = DeviceStore(db_path)
    except (MusterError, click.BadParameter) as exc:
        _report(SyncStatus(status=SyncState.FAILED, kind="full", error=str(exc)))
        sys.exit(1)
    status = SyncStatus(status=SyncState.SUCCESS)  # what a --watch stopped by a signal leaves
    progress = _ProgressLine() if sys.stderr.isatty() else None
    try:
        if watch:
            watching = sync_forever(server_url, store, username, password, _report, full=full, watch=progress)
            status = asyncio.run(_until_stopped(watching)) or status
        else:
            status = asyncio.run(sync_once(server_url, store, username, password, full=full, watch=progress))
            _report(status)
    finally:
        store.close()
    sys.exit(1 if _any_failed(status.to_cli_json()) else 0)


async def _until_stopped(work: Coroutine[Any, Any, T]) -> T | None:
    """Run ``work`` until it returns, or until SIGINT / SIGTERM cancels it (then None)."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return None
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(stop)


@main.command()
@ca_file_option
@click.option("--server", "server_url", required=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--user", "username", required=True)
@password_options
@click.option("--mode", type=click.Choice(["EMERCY", "GENASS", "ASHSHP"]), required=True)
@click.option("--station", required=True, help="Muster station code (lifeboat code for ASHSHP).")
@click.option("--card", required=True, help="Board card number.")
@click.option("--force", is_flag=True, help="Register a person from another station (handling mode 2).")
def register(
    server_url: str,
    db_path: Path,
    username: str,
    password_given: str | None,
    password_file: Path | None,
    mode: str,
    station: str,
    card: str,
    force: bool,
) -> None:
    """Register a card through the outbox; prints {"registration_id", "profile_id", "result",
    "pending_upload", "error"}; exits 1 unless registered or already registered."""
    password = _password(password_given, password_file)
    from sync_core.clock import SystemClock
    from sync_core.device import DeviceStore
    from sync_core.device.headless import register_once
    from sync_core.device.registrar import Post
    from sync_core.errors import MusterError
    from sync_core.protocol import SafetyMode

    empty = {"registration_id": None, "profile_id": None, "result": None, "pending_upload": 0}
    try:
        store = DeviceStore(db_path)
    except MusterError as exc:
        click.echo(json.dumps(empty | {"error": str(exc)}))
        sys.exit(1)
    post = Post(username, SafetyMode(mode), station, SystemClock())
    try:
        report = asyncio.run(register_once(server_url, store, username, password, post, card, force=force))
    finally:
        store.close()
    click.echo(json.dumps(report))
    sys.exit(0 if report["result"] in ("registered", "already registered") else 1)


def _report(status: SyncStatus) -> None:
    click.echo(json.dumps(status.to_cli_json()))


class _ProgressLine:
    """A full sync's progress as one line on stderr (a terminal), rewritten in place while
    it runs and ended with a newline when the run ends."""

    def __init__(self) -> None:
        self.shown = ""

    def __call__(self, status: SyncStatus) -> None:
        line = f"Full sync: {status.progress.summary()}" if status.running and status.progress else ""
        if line == self.shown:
            return
        click.echo(f"\r\x1b[K{line}" if line else "\n", err=True, nl=False)
        self.shown = line


@main.command()
@ca_file_option
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(db_path: Path, as_json: bool) -> None:
    """Probe now with the server of the last sync (VPN target: $MUSTER_VPN_TARGET, HOST:PORT);
    prints {"mode", "dependencies", "sync", "upload", "outbox", "refused", "last_used",
    "days_to_wipe"};
    exits 0 online or offline, 1 with {"error"} when the store cannot be opened (without
    --json: the error as a line on stderr)."""
    from sync_core.device import DeviceStore
    from sync_core.device.connectivity import VPN_TARGET_ENV
    from sync_core.device.status_report import status_report
    from sync_core.errors import MusterError, StoreUnusable

    try:
        if not db_path.is_file():  # a status check creates no store
            raise StoreUnusable(str(db_path), "no such file")
        store = DeviceStore(db_path)
    except MusterError as exc:
        click.echo(json.dumps({"error": str(exc)}) if as_json else f"error: {exc}", err=not as_json)
        sys.exit(1)
    try:
        report = asyncio.run(status_report(store, os.environ.get(VPN_TARGET_ENV)))
    finally:
        store.close()
    click.echo(json.dumps(report) if as_json else _status_lines(report))


def _status_lines(report: dict) -> str:
    """``muster status`` without ``--json``: the mode, one line per dependency, then the last
    sync, the upload, the outbox and the retention count."""
    lines = [f"mode: {report['mode']}"]
    for name, dep in report["dependencies"].items():
        lines.append(f"  {name}: {dep['state']}" + (f" ({dep['reason']})" if dep["reason"] else ""))
    sync, upload, outbox = report["sync"], report["upload"], report["outbox"]
    cursor = f", cursor {sync['cursor']}" if sync["cursor"] is not None else ""
    lines.append(f"sync: {sync['status']} ({sync['kind']}){cursor}")
    if sync["error"]:
        lines.append(f"  reason: {sync['error']}")
    lines.append(f"upload: {upload['status']}")
    lines.append(f"outbox: {outbox['pending']} pending, {outbox['sent']} sent, {outbox['failed']} failed")
    lines += [f"  refused {refusal['profile_id']}: {refusal['reason']}" for refusal in report["refused"]]
    if report["last_used"] is not None:
        lines.append(
            f"last used: {report['last_used']}; days to the retention wipe: {report['days_to_wipe']}"
        )
    return "\n".join(lines)


@main.group()
@ca_file_option
@click.option("--server", "server_url", required=True)
@click.option("--user", "username", required=True)
@password_options
@click.pass_context
def admin(
    ctx: click.Context, server_url: str, username: str, password_given: str | None, password_file: Path | None
) -> None:
    """The ship's office changes server data (`set`, `delete`) or the ship's safety mode (`mode`)."""
    ctx.obj = _Office(server_url, username, password_given, password_file)


class _Office:
    """``muster admin``'s server and user; the password is asked for once a subcommand runs (not
    for ``--help``)."""

    def __init__(self, server_url: str, username: str, given: str | None, file: Path | None) -> None:
        self.server_url, self.username, self._given, self._file = server_url, username, given, file

    def signed(self) -> tuple[str, str, str]:
        """``(server_url, username, password)``."""
        return self.server_url, self.username, _password(self._given, self._file)


def _edit_command(action: str, help_text: str) -> None:
    @admin.command(action, help=help_text)
    @click.argument("key")
    @click.argument("record_id")
    @click.argument("assignments", nargs=-1)
    @click.pass_obj
    def edit(office: _Office, key: str, record_id: str, assignments: tuple[str, ...]) -> None:
        from sync_core.device.admin import run_admin

        try:
            fields = dict(_assignment(item) for item in assignments)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        signed = office.signed()
        if key == "users" and fields.get("password") == "":
            fields["password"] = click.prompt(f"New password for {record_id}", hide_input=True, err=True)
        _echo_result(asyncio.run(run_admin(*signed, action, key, record_id, fields)))


_edit_command(
    "set",
    "Set FIELD=VALUE ... of (or create) record RECORD_ID of dataset KEY. VALUE is JSON when it parses, "
    "else text; `set reservations ID picture=PATH` replaces a portrait; `set users NAME password=` asks "
    'for the user\'s new password (not echoed). Prints {"cursor"} or {"error"}.',
)
_edit_command("delete", 'Delete record RECORD_ID of dataset KEY. Prints {"cursor"} or {"error"}.')


@admin.command("mode")
@click.argument("action", type=click.Choice(["start", "end"]))
@click.argument("mode", type=click.Choice(["EMERCY", "GENASS", "ASHSHP"]), required=False)
@click.pass_obj
def admin_mode(office: _Office, action: str, mode: str | None) -> None:
    """`start EMERCY|GENASS|ASHSHP` a muster ship-wide, or `end` it; online handhelds follow.
    Prints {"mode", "since", "set_by"} or {"error"}."""
    from sync_core.device.admin import run_safety_mode
    from sync_core.protocol import SafetyMode

    if (action == "start") != (mode is not None):
        raise click.UsageError("use `mode start EMERCY|GENASS|ASHSHP` or `mode end`")
    _echo_result(asyncio.run(run_safety_mode(*office.signed(), SafetyMode(mode) if mode else None)))


@main.command()
@ca_file_option
@click.option("--server", "server_url", required=True)
@click.option("--user", "username", required=True)
@password_options
@click.option("--mode", type=click.Choice(["EMERCY", "GENASS", "ASHSHP"]), required=True)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
    help="Count registrations from this time (UTC unless an offset is given).",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "pdf"]), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def report(
    server_url: str,
    username: str,
    password_given: str | None,
    password_file: Path | None,
    mode: str,
    since: datetime | None,
    fmt: str,
    out: Path,
) -> None:
    """The drill report (office): per station who registered when, by which user and device; who
    is missing; totals. Written to OUT (owner-only); prints {"out", "bytes"} or {"error"}."""
    from datetime import UTC

    from sync_core.device.admin import fetch_report
    from sync_core.protocol import SafetyMode

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    password = _password(password_given, password_file)
    _echo_result(asyncio.run(fetch_report(server_url, username, password, SafetyMode(mode), since, fmt, out)))


def _echo_result(result: dict) -> None:
    click.echo(json.dumps(result))
    sys.exit(1 if result.get("error") else 0)


def _assignment(item: str) -> tuple[str, object]:
    name, sep, text = item.partition("=")
    if not sep or not name:
        raise ValueError(f"{item!r} is not FIELD=VALUE")
    try:
        return name, json.loads(text)
    except ValueError:
        return name, text


def _any_failed(report: dict) -> bool:
    statuses = [report["status"], report["upload"]["status"]]
    statuses += [row["status"] for row in report["datasets"].values()]
    return "Failed" in statuses


def _run_app(server_url: str, db_path: Path, profile_name: str | None) -> None:
    from muster_tui.terminal.profiles import choose, prepare_environment

    try:
        profile = choose(profile_name, os.environ)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=PROFILE_ENV) from exc
    prepare_environment(profile)  # before Textual is imported: it reads them at import

    from muster_tui.app import make_app
    from muster_tui.log_file import log_path, logging_to
    from sync_core.device import DeviceStore
    from sync_core.device.client import server_address_problem
    from sync_core.errors import MusterError

    problem = server_address_problem(server_url)
    if problem:
        raise click.BadParameter(problem, param_hint="--server")
    try:
        store = DeviceStore(db_path)
    except MusterError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with logging_to(log_path(db_path)):
            make_app(server_url, store, profile=profile).run()
    finally:
        store.close()


if __name__ == "__main__":
    main()
