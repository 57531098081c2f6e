"""The files of a device store that the retention wipe replaces or removes (docs/security.md,
'The retention wipe: crypto-shredding').

Beside the store ``FILE.duckdb`` DuckDB keeps its write-ahead log ``FILE.duckdb.wal`` and its
temporary directory ``FILE.duckdb.tmp``; the app rotates its log ``FILE.log`` into
``FILE.log.1``... The wipe writes what it keeps into ``FILE.duckdb.wiping``, then
:func:`replace_store` moves it into place and overwrites and removes the rest. The current log
stays: logs carry ids, never personal data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from sync_core.files import sync_directory

WIPING_SUFFIX = ".wiping"
_CHUNK = 1 << 20


def fresh_path(path: Path) -> Path:
    """Where the wipe of the store at ``path`` writes the new store."""
    return path.with_name(path.name + WIPING_SUFFIX)


def discard(path: Path) -> None:
    """Overwrite and remove ``path`` and its WAL, if they exist (a wipe a crash interrupted
    before its new store was in place: the old one is still whole)."""
    for file in (path, _wal(path)):
        shred(file)


def replace_store(path: Path, fresh: Path) -> None:
    """Put the store ``fresh`` (closed) in place of the store at ``path`` (closed), and overwrite
    and remove the old store, its WAL, DuckDB's temporary directory and the rotated logs.

    The old WAL goes first (a closed store has none to replay), then the new file replaces the
    old one in one rename, then the old one's bytes are overwritten through a handle kept
    open across the rename. Raises OSError.
    """
    shred(_wal(path))
    temporary = path.with_name(path.name + ".tmp")
    if temporary.is_dir():
        for file in temporary.rglob("*"):
            shred(file)
        shutil.rmtree(temporary)
    for log in path.parent.glob(path.stem + ".log.*"):
        shred(log)
    with open(path, "r+b") as old:
        os.replace(fresh, path)
        _overwrite(old)
    sync_directory(path.parent)


def shred(path: Path) -> None:
    """Overwrite the regular file ``path`` with zeros, flush it to the disk, and remove it;
    nothing when it does not exist. Flash storage may keep old blocks elsewhere: the data in
    the store was sealed, and its key is gone."""
    if not path.is_file():
        return
    with open(path, "r+b") as file:
        _overwrite(file)
    path.unlink()


def _overwrite(file: BinaryIO) -> None:
    """Write zeros over the whole of ``file`` (open for writing) and flush it to the disk."""
    fd = file.fileno()
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    zeros = bytes(_CHUNK)
    for start in range(0, size, _CHUNK):
        os.write(fd, zeros[: min(_CHUNK, size - start)])
    os.fsync(fd)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")
