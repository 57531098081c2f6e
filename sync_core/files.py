"""Private files: the stores hold personal data (sealed on the device), so their files are
readable by their owner only (docs/security.md, 'Files'): directories 0700, files 0600.

:func:`private_umask` is set by every ``muster`` command, so each file and directory a Muster
process creates (stores, write-ahead logs, DuckDB's temporary files, logs, ship data) starts
private; :func:`make_private` tightens a store's files made before, and
:func:`shared_directory` names a data directory other users may read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
UMASK = 0o077


def private_umask() -> None:
    """Make this process create files 0600 and directories 0700 (the umask 077)."""
    os.umask(UMASK)


def make_private(*paths: Path) -> None:
    """Make each existing regular file of ``paths`` 0600 (a store made by an older version or
    another umask)."""
    for path in paths:
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            path.chmod(FILE_MODE)


def sync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries to disk (a file renamed into it survives a power cut)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def shared_directory(directory: Path) -> bool:
    """True when users other than the owner may enter or read ``directory``."""
    return bool(directory.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
