"""Where the server keeps portrait bytes: content-addressed files beside its store.

The ``pictures`` dataset's rows (``sha256``, ``profile_id``, ``_seq``) live in the server
store like every dataset's, with ``jpeg`` left NULL, so the change sequence, the journal and
the tombstones of portraits are those of any record; the bytes live here, one file per
portrait named by its SHA-256 (``DIR/ab/abcdef....jpg``). In DuckDB or PostgreSQL the
portraits of a big ship passed through the engine's memory on import and on every fetch
(docs/architecture.md, 'Portraits as files'); a file is written and read at one portrait's
size, whatever the ship.

Like the store, the files are readable by their owner only (docs/security.md, 'Files'):
directories 0700, files 0600. A file is written to a temporary name and renamed into place,
never in part. An office's portrait is synced to disk before its row commits
(:meth:`PortraitFiles.write` with ``durable``); an import's are synced all at once before the
import commits (:meth:`PortraitFiles.sync`). A file whose row is gone is removed after the
change commits; one left by a crash between the two is never served (the store no longer
names it).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from sync_core.files import DIRECTORY_MODE, FILE_MODE, sync_directory

log = logging.getLogger(__name__)
_NAME = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".jpg"
# Portraits served go out in Arrow record batches of about this many bytes, so a request
# holds one batch, not its up to PICTURE_BATCH_MAX portraits.
SERVE_BATCH_BYTES = 1024 * 1024
PICTURES_SCHEMA = pa.schema([("sha256", pa.string()), ("profile_id", pa.string()), ("jpeg", pa.binary())])


class PortraitFiles:
    """Portrait bytes by SHA-256 (lowercase hex) under the directory ``root`` (made when the
    first is written). Safe from several threads: each method works on whole files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """The file of portrait ``sha256``. Raises ValueError for a name that is no SHA-256."""
        if not _NAME.fullmatch(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}{_SUFFIX}"

    def write(self, sha256: str, jpeg: bytes, *, durable: bool = False) -> None:
        """Keep ``jpeg`` (already checked to hash to ``sha256``) as that portrait's file;
        ``durable`` syncs it and its directory to disk first. Raises OSError (a full disk)."""
        path = self.path(sha256)
        for directory in (self.root, path.parent):
            directory.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
        partial = path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.write(fd, jpeg)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
        if durable:
            sync_directory(path.parent)

    def read(self, sha256: str) -> bytes | None:
        """The portrait's bytes, or None (logged) when its file is missing."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            log.warning("portrait file %s is missing", sha256)
            return None

    def remove(self, hashes: Iterable[str]) -> None:
        """Remove the files of ``hashes`` (those already gone are skipped)."""
        for sha256 in hashes:
            self.path(sha256).unlink(missing_ok=True)

    def batches(self, owners: Iterable[tuple[str, str]]) -> Iterator[pa.RecordBatch]:
        """The portraits of ``owners`` (``(sha256, profile_id)`` pairs) as record batches of
        ``PICTURES_SCHEMA`` of about ``SERVE_BATCH_BYTES`` each; a missing file is left out."""
        rows: list[tuple[str, str, bytes]] = []
        size = 0
        for sha256, profile_id in owners:
            jpeg = self.read(sha256)
            if jpeg is None:
                continue
            rows.append((sha256, profile_id, jpeg))
            size += len(jpeg)
            if size >= SERVE_BATCH_BYTES:
                yield _batch(rows)
                rows, size = [], 0
        if rows:
            yield _batch(rows)

    @staticmethod
    def sync() -> None:
        """Flush every file written so far to disk (one ``sync``: an import's tens of
        thousands of files synced one by one took minutes)."""
        os.sync()


def _batch(rows: list[tuple[str, str, bytes]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.record_batch(
        [pa.array(values, field.type) for values, field in zip(columns, PICTURES_SCHEMA, strict=True)],
        PICTURES_SCHEMA,
    )
