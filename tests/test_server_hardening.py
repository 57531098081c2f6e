"""Server sign-in hardening (docs/security.md, "Server sign-in"): sessions end when the
office deletes, demotes or re-passwords a user; lockout per username and rate limit per
address; an unknown username costs what a known one costs; the API docs are off; HTTPS.

In-process (``httpx.ASGITransport``, a frozen clock) except HTTPS, which needs a socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fixtures.ship import fixture_passwords
from sync_core.clock import FrozenClock
from sync_core.device import ServerClient
from sync_core.errors import InvalidLogin, ServerRejected, ServerUnreachable, SessionEnded
from sync_core.passwords import HASHER
from sync_core.protocol import RecordChange, SafetyMode
from sync_core.server.app import create_app
from sync_core.server.edits import apply_changes
from sync_core.server.process import ServerProcess
from sync_core.server.sign_in import SignInLimits
from sync_core.server.store import ServerStore

from .cli import muster_sync
from .conftest import SMALL_SEED

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
Connect = Callable[..., ServerClient]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def connect(server_store: ServerStore, clock: FrozenClock) -> AsyncIterator[Connect]:
    """Clients of one in-process app; ``connect(address)`` speaks from that client address."""
    app = create_app(server_store, clock, SignInLimits(address_failures_max=30))
    clients: list[ServerClient] = []

    def client(address: str = "10.0.0.1") -> ServerClient:
        transport = httpx.ASGITransport(app, client=(address, 40000))
        clients.append(ServerClient("http://muster.test", transport=transport))
        return clients[-1]

    yield client
    for made in clients:
        await made.aclose()


async def _office(connect: Connect) -> ServerClient:
    office = connect("10.0.0.100")
    await office.sign_in("office", "office")
    return office


async def _can_read(client: ServerClient) -> None:
    """Three data endpoints a session opens, each answered."""
    await client.create_snapshot()
    await client.fetch_changes(0, 1)
    await client.places(SafetyMode.GENASS)


async def test_a_deleted_user_s_session_ends_at_once(connect: Connect) -> None:
    crew, password = connect(), fixture_passwords("small", SMALL_SEED)["crew01"]
    await crew.sign_in("crew01", password)
    await _can_read(crew)
    office = await _office(connect)
    await office.post_changes([RecordChange(key="users", id="crew01", op="delete")])
    for call in (crew.create_snapshot(), crew.fetch_changes(0, 1), crew.places(SafetyMode.GENASS)):
        with pytest.raises(SessionEnded):
            await call
    with pytest.raises(InvalidLogin):
        await crew.sign_in("crew01", password)


async def test_a_demoted_office_user_keeps_no_office_rights(connect: Connect) -> None:
    office = await _office(connect)
    fields = {"display_name": "Purser", "role": "office", "password_hash": HASHER.hash("purser pass")}
    await office.post_changes([RecordChange(key="users", id="purser", op="set", fields=fields)])
    purser = connect()
    await purser.sign_in("purser", "purser pass")
    edit = [RecordChange(key="parameters", id="note", op="set", fields={"value": "x"})]
    await purser.post_changes(edit)
    await office.post_changes([RecordChange(key="users", id="purser", op="set", fields={"role": "crew"})])
    with pytest.raises(SessionEnded):
        await purser.post_changes(edit)
    assert (await purser.sign_in("purser", "purser pass")).role == "crew"
    with pytest.raises(ServerRejected) as refused:
        await purser.post_changes(edit)
    assert refused.value.status_code == 403
    await office.post_changes(edit)  # the office's own session goes on


async def test_a_new_password_ends_the_old_sessions(connect: Connect) -> None:
    demo = connect()
    await demo.sign_in("demo", "demo")
    office = await _office(connect)
    new = {"password_hash": HASHER.hash("new demo pass")}
    await office.post_changes([RecordChange(key="users", id="demo", op="set", fields=new)])
    with pytest.raises(SessionEnded):
        await _can_read(demo)
    with pytest.raises(InvalidLogin):
        await demo.sign_in("demo", "demo")
    await demo.sign_in("demo", "new demo pass")
    await _can_read(demo)


async def _refused(client: ServerClient, username: str, password: str) -> ServerRejected:
    with pytest.raises(ServerRejected) as refused:
        await client.sign_in(username, password)
    assert refused.value.status_code == 429
    return refused.value


async def _wrong(client: ServerClient, username: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(InvalidLogin):
            await client.sign_in(username, "wrong")


async def test_five_wrong_passwords_lock_a_username_on_the_server_for_15_minutes(
    connect: Connect, clock: FrozenClock
) -> None:
    device = connect()
    await _wrong(device, "demo", 5)
    refused = await _refused(device, "demo", "demo")  # the right password, too late
    assert refused.retry_after == 15 * 60
    await _wrong(device, "nobody", 5)  # an unknown username locks the same way
    await _refused(device, "nobody", "x")
    assert (await connect("10.0.0.2").sign_in("office", "office")).role == "office"
    clock.advance(15 * 60)
    assert (await device.sign_in("demo", "demo")).username == "demo"


async def test_40_wrong_passwords_then_the_right_one_is_refused(connect: Connect) -> None:
    device = connect()
    for _ in range(40):
        with pytest.raises((InvalidLogin, ServerRejected)):
            await device.sign_in("demo", "wrong")
    await _refused(device, "demo", "demo")


async def test_guesses_sent_side_by_side_get_no_more_tries_than_one_by_one(connect: Connect) -> None:
    guesses = [connect(f"10.0.1.{number}").sign_in("demo", f"guess {number}") for number in range(20)]
    outcomes = await asyncio.gather(*guesses, return_exceptions=True)
    assert sum(isinstance(outcome, InvalidLogin) for outcome in outcomes) == 5
    refused = [outcome for outcome in outcomes if isinstance(outcome, ServerRejected)]
    assert len(refused) == 15 and {error.status_code for error in refused} == {429}


async def test_the_server_lockout_follows_the_general_parameters(
    connect: Connect, clock: FrozenClock
) -> None:
    office = await _office(connect)
    await office.post_changes(
        [
            RecordChange(key="parameters", id="max_failed_sign_ins", op="set", fields={"value": "2"}),
            RecordChange(key="parameters", id="lockout_minutes", op="set", fields={"value": "1"}),
        ]
    )
    device = connect()
    await _wrong(device, "demo", 2)
    assert (await _refused(device, "demo", "demo")).retry_after == 60
    clock.advance(60)
    await device.sign_in("demo", "demo")


async def test_one_address_failing_for_many_usernames_is_refused_then_let_in_again(
    connect: Connect, clock: FrozenClock
) -> None:
    guesser = connect("10.0.0.66")
    for number in range(10):
        await _wrong(guesser, f"user{number}", 3)  # under each username's lockout
    assert (await _refused(guesser, "office", "office")).retry_after == 5 * 60
    assert (await connect("10.0.0.2").sign_in("office", "office")).role == "office"
    clock.advance(5 * 60)
    await guesser.sign_in("office", "office")


async def test_an_unknown_username_costs_what_a_known_one_costs(server_store: ServerStore) -> None:
    lockout_off = {"value": "100000"}  # this test measures the check, not the lockout
    apply_changes(
        server_store, [RecordChange(key="parameters", id="max_failed_sign_ins", op="set", fields=lockout_off)]
    )
    app = create_app(server_store, FrozenClock(T0), SignInLimits(address_failures_max=100_000))
    seconds: dict[str, list[float]] = {"known": [], "unknown": []}
    async with ServerClient("http://muster.test", transport=httpx.ASGITransport(app)) as client:
        for number in range(50):  # interleaved, so a change of load hits both alike
            for kind, username in (("known", "demo"), ("unknown", f"nobody{number}")):
                started = time.perf_counter()
                with pytest.raises(InvalidLogin):
                    await client.sign_in(username, "wrong")
                seconds[kind].append(time.perf_counter() - started)
    known, unknown = statistics.median(seconds["known"]), statistics.median(seconds["unknown"])
    assert abs(unknown - known) <= 0.2 * known, (known, unknown)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_the_api_docs_are_served_only_when_asked_for(server_store: ServerStore, path: str) -> None:
    for api_docs, status in ((False, 404), (True, 200)):
        app = create_app(server_store, FrozenClock(T0), api_docs=api_docs)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://muster.test"
        ) as http:
            assert (await http.get(path)).status_code == status


def _self_signed(where: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "muster test server")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = where / "server.crt", where / "server.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    keyfile.chmod(0o600)
    return certfile, keyfile


async def test_https_with_a_certificate_the_device_verifies(ship_dir: Path, tmp_path: Path) -> None:
    certfile, keyfile = _self_signed(tmp_path)
    options = ("--certfile", str(certfile), "--keyfile", str(keyfile))
    server = ServerProcess(ship_dir, tmp_path / "server.duckdb", tmp_path / "server.log", options=options)
    url = server.start()
    try:
        assert url.startswith("https://127.0.0.1:")
        async with ServerClient(url, ca_file=str(certfile)) as trusting:
            assert (await trusting.sign_in("demo", "demo")).server_id == server.server_id
        async with ServerClient(url) as system_store_only:
            with pytest.raises(ServerUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
                await system_store_only.sign_in("demo", "demo")
        async with ServerClient(url.replace("https:", "http:")) as plain:
            with pytest.raises(ServerUnreachable):
                await plain.health()
        code, report = muster_sync(url, tmp_path / "device.duckdb", "demo", "--ca-file", str(certfile))
        assert (code, report["status"]) == (0, "Success"), report["error"]
        code, report = muster_sync(url, tmp_path / "other.duckdb")
        assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in report["error"]
    finally:
        server.stop()
