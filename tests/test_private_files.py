"""Passwords stay off command lines and stores stay private (docs/security.md): `muster sync`,
`register` and `admin` take the password from a prompt, ``MUSTER_PASSWORD`` or
``--password-file``, and `ps` (the process's command line) never shows it; ``--password``
still works with a warning. The files of the device and of the server are 0600, directories
Muster makes 0700.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.ship import fixture_passwords
from sync_core.server.process import ServerProcess

from .cli import REGISTER_KEYS, SYNC_KEYS, json_report, run_muster, two_people
from .conftest import SMALL_SEED

CREW01 = fixture_passwords("small", SMALL_SEED)["crew01"]


def _prompted(args: list[str], answers: str) -> tuple[bytes, subprocess.CompletedProcess[str]]:
    """Run ``muster ARGS`` with no password in its environment, answering its prompts with
    ``answers``: the command line `ps` shows, and the finished run."""
    env = {name: value for name, value in os.environ.items() if name != "MUSTER_PASSWORD"}
    command = [sys.executable, "-m", "muster_tui", *args]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as child:
        shown = _command_line(child.pid)
        out, err = child.communicate(answers, timeout=90)
    return shown, subprocess.CompletedProcess(command, child.returncode, out, err)


def _command_line(pid: int) -> bytes:
    """What `ps` shows for the running process ``pid`` (its argv, NUL-separated); empty for a
    moment after it starts, so read until it is not."""
    for _ in range(500):
        shown = Path(f"/proc/{pid}/cmdline").read_bytes()
        if shown:
            return shown
        time.sleep(0.01)
    raise AssertionError(f"process {pid} shows no command line")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sync_and_register_ask_for_the_password_and_ps_never_shows_it(
    live_server: ServerProcess, ship_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "device.duckdb"
    sync = ["sync", "--server", live_server.url, "--db", str(db), "--user", "crew01"]
    shown, done = _prompted(sync, CREW01 + "\n")
    assert b"crew01" in shown and CREW01.encode() not in shown and b"--password" not in shown
    assert json_report(done, SYNC_KEYS)["error"] is None, done.stderr
    (card, _, station), _ = two_people(ship_dir)
    register = ["register", "--server", live_server.url, "--db", str(db), "--user", "crew01"]
    register += ["--mode", "GENASS", "--station", station, "--card", card]
    shown, done = _prompted(register, CREW01 + "\n")
    assert CREW01.encode() not in shown
    assert json_report(done, REGISTER_KEYS)["result"] == "registered", done.stderr
    assert _mode(db) == 0o600 and all(
        _mode(path) == 0o600 for path in tmp_path.glob("device.*") if path.is_file()
    )


def test_the_password_from_the_environment_a_file_or_the_discouraged_option(
    live_server: ServerProcess, tmp_path: Path
) -> None:
    db = tmp_path / "device.duckdb"
    sync = ["sync", "--server", live_server.url, "--db", str(db), "--user", "crew01"]
    from_env = run_muster(*sync, env={**os.environ, "MUSTER_PASSWORD": CREW01})
    assert json_report(from_env, SYNC_KEYS)["error"] is None and "warning" not in from_env.stderr
    secret = tmp_path / "password"
    secret.write_text(CREW01 + "\n")
    from_file = run_muster(*sync, "--password-file", str(secret))
    assert json_report(from_file, SYNC_KEYS)["error"] is None
    wrong = run_muster(*sync, "--password", CREW01 + "x")
    assert "shows in `ps`" in wrong.stderr and json_report(wrong, SYNC_KEYS)["error"] is not None


def test_admin_asks_for_its_password_and_a_new_users_password_and_ps_shows_neither(
    own_server: ServerProcess,
) -> None:
    new = "Boss-" + CREW01
    make_boss = ["admin", "--server", own_server.url, "--user", "office", "set", "users", "boss"]
    make_boss += ["display_name=The Boss", "role=office", "password="]
    shown, done = _prompted(make_boss, f"office\n{new}\n")
    assert new.encode() not in shown and b"office\x00set" in shown
    assert json_report(done)["error"] is None, done.stderr
    as_boss = ["admin", "--server", own_server.url, "--user", "boss", "set", "lifeboats", "LB02"]
    as_boss.append("description=Aft")
    done = run_muster(*as_boss, env={**os.environ, "MUSTER_PASSWORD": new})
    assert json_report(done)["error"] is None, done.stderr


def test_server_files_and_generated_ship_data_are_private(own_server: ServerProcess, tmp_path: Path) -> None:
    assert _mode(tmp_path / "server.duckdb") == 0o600 and _mode(tmp_path / "server.log") == 0o600
    out = tmp_path / "new-ship"
    done = run_muster("fixtures", "ship", "--preset", "small", "--seed", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert _mode(out) == 0o700 and {_mode(path) for path in out.iterdir()} == {0o600}


def test_a_store_made_by_another_umask_becomes_private_and_a_shared_directory_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sync_core.device import DeviceStore

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    path = shared / "device.duckdb"
    DeviceStore(path).close()
    path.chmod(0o644)  # as an older version left it
    DeviceStore(path).close()
    assert _mode(path) == 0o600
    assert "open to other users" in caplog.text
