"""The core knows no UI, ``muster --help`` stays cheap (docs/architecture.md, 'Who may import
whom'), and a device process leaves out what it does not use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.sealed import arrow_stream

# Not "rich": httpx imports it for its optional command line whenever rich is installed.
UI_MODULES = ("textual", "muster_tui")


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_sync_core_imports_no_ui() -> None:
    loaded = _modules_after("import sync_core.device, sync_core.server, sync_core.device.headless")
    assert not loaded & set(UI_MODULES)


def test_cli_help_imports_no_heavy_library() -> None:
    code = (
        "from click.testing import CliRunner\n"
        "from muster_tui.cli import main\n"
        "CliRunner().invoke(main, ['--help'])"
    )
    loaded = _modules_after(code)
    assert not loaded & {"textual", "duckdb", "pyarrow", "httpx"}


# A device process stages a dataset, applies a delta page and reads the personal data back,
# from Arrow streams the test wrote; prints the modules it loaded.
_DEVICE_WORK = """
import os, sys
from datetime import UTC, datetime
from sync_core.device import DeviceStore
from sync_core.device.arrow_rows import ArrowStream
from sync_core.device.delta_page import DeltaPage
from sync_core.protocol import wire_columns
store = DeviceStore(sys.argv[1])
store.unlock(os.urandom(32))
data = open(sys.argv[2], "rb").read()
store.begin_staging()
assert store.stage("reservations", ArrowStream(data, wire_columns("reservations"), "test")) == 2
rows = ArrowStream(data, wire_columns("reservations"), "test").read_all()
page = DeltaPage(cursor=1, more=False, upserts={"reservations": rows}, deletes={})
assert store.apply_page(page, True, datetime.now(UTC)) == {"reservations": 2}
print("\\n".join(sys.modules))
"""


def test_the_device_loads_no_pyarrow(tmp_path: Path) -> None:
    """pyarrow put ~26 MB on a device process's memory as it loaded (and pyarrow.compute ~9
    more): the device reads Arrow with nanoarrow, and DuckDB reads that without pyarrow."""
    profiles = [{"profile_id": f"P{n}", "first_name": "Ana", "last_name": "Silva"} for n in (1, 2)]
    stream = tmp_path / "reservations.arrows"
    stream.write_bytes(arrow_stream("reservations", profiles))
    out = subprocess.run(
        [sys.executable, "-c", _DEVICE_WORK, str(tmp_path / "device.duckdb"), str(stream)],
        check=True,
        capture_output=True,
        text=True,
    )
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert "nanoarrow" in loaded and "pyarrow" not in loaded
