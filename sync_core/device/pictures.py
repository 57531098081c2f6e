"""Where the device keeps portrait bytes: content-addressed files beside the store.

The ``pictures`` dataset's rows (``sha256``, ``profile_id``) live in the DuckDB store like
every dataset's, with ``jpeg`` left NULL; the bytes live here, one file per portrait named by
its SHA-256 (``<store>.portraits/ab/abcdef....jpg``). Under the device's DuckDB
``memory_limit`` a statement over hundreds of MB of BLOBs (a join to reuse held portraits,
a delete of orphans, a checkpoint after them) ran out of memory; files keep every portrait
write and read at one portrait's size, whatever the ship, and out of DuckDB's buffer pool.

Everything that touches the bytes goes through :class:`PortraitFiles`, the one place that
knows how a portrait is kept: sealed with the data key, its SHA-256 as associated data
(docs/security.md), so a file holds no readable portrait.

Files are written to a temporary name and renamed into place, never in part; they are not
fsynced one by one (that took ~1.7 ms each here, longer than the rest of a full sync), so a
power cut may lose the latest: :meth:`PortraitFiles.read` checks every file against its
hash, and a lost or damaged one counts as missing and is fetched again
(:meth:`~sync_core.device.store.DeviceStore.missing_pictures`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sync_core.device.sealing import Sealer
from sync_core.errors import StoreLocked

log = logging.getLogger(__name__)
_NAME = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".jpg"


class PortraitFiles:
    """Portrait bytes by SHA-256 (lowercase hex) under the directory ``root`` (created when
    the first is written), sealed by the :class:`Sealer` that ``sealer()`` returns (it raises
    StoreLocked while the store is locked). Methods are safe from several threads: each works
    on whole files."""

    def __init__(self, root: Path, sealer: Callable[[], Sealer]) -> None:
        self.root = root
        self._sealer = sealer

    def _path(self, sha256: str) -> Path:
        if not _NAME.fullmatch(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}{_SUFFIX}"

    def write(self, sha256: str, jpeg: bytes) -> None:
        """Keep ``jpeg`` (already checked to hash to ``sha256``) as that portrait's bytes.
        Raises OSError when the file cannot be written (a full disk), StoreLocked while the
        store is locked."""
        sealed = self._sealer().seal(jpeg, sha256.encode())
        path = self._path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(sealed)
        os.replace(partial, path)

    def read(self, sha256: str) -> bytes | None:
        """The portrait's bytes, or None when it is not held. A file whose bytes no longer
        hash to ``sha256`` (damaged) is removed, logged, and answered None."""
        path = self._path(sha256)
        sealer = self._sealer()
        try:
            jpeg: bytes | None = sealer.open(path.read_bytes(), sha256.encode())
        except FileNotFoundError:
            return None
        except StoreLocked:  # altered, or sealed under another key
            jpeg = None
        if jpeg is None or hashlib.sha256(jpeg).hexdigest() != sha256:
            log.warning("portrait file %s is damaged: removed, it will be fetched again", path.name)
            path.unlink(missing_ok=True)
            return None
        return jpeg

    def holds(self, sha256: str) -> bool:
        """True when a file for the portrait exists (its bytes are checked when read)."""
        return self._path(sha256).is_file()

    def held(self) -> Iterator[str]:
        """The hashes of every portrait file held, in no particular order."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir():
                for path in folder.iterdir():
                    if path.suffix == _SUFFIX and _NAME.fullmatch(path.stem):
                        yield path.stem

    def remove(self, hashes: Iterable[str]) -> int:
        """Delete the files of ``hashes`` (those not held are skipped); returns how many went."""
        removed = 0
        for sha256 in hashes:
            path = self._path(sha256)
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def keep_only(self, named: Iterable[str]) -> int:
        """Delete every portrait file whose hash is not in ``named`` (ascending, as ``ORDER BY``
        gives them; read once, a folder at a time, so no set of every hash is built) and any
        left half written; returns how many portraits went."""
        if not self.root.is_dir():
            return 0
        upcoming = iter(named)
        at: str | None = next(upcoming, None)
        removed = 0
        for folder in sorted(path for path in self.root.iterdir() if path.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix != _SUFFIX or not _NAME.fullmatch(path.stem):
                    if path.suffix == ".part":
                        path.unlink(missing_ok=True)
                    continue
                while at is not None and at < path.stem:
                    at = next(upcoming, None)
                if at != path.stem:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def clear(self) -> None:
        """Delete every portrait file and the directory (the retention wipe)."""
        shutil.rmtree(self.root, ignore_errors=True)
