"""The core knows no UI, ``muster --help`` stays cheap (docs/architecture.md, 'Who may import
whom'), and a device process leaves out what it does not use."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_device_loads_no_arrow_compute() -> None:
    """pyarrow.compute makes a Python function for each of Arrow's kernels as it loads: a
    device process that imported it peaked ~9 MB higher in every sync benchmark."""
    script = "import sync_core.device.runtime, sync_core.device.headless, sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    loaded = set(out.stdout.split())
    assert "pyarrow.ipc" in loaded
    assert "pyarrow.compute" not in loaded
