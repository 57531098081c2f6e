"""The server's Arrow streams on the device: decoded by nanoarrow, read by DuckDB.

Datasets, delta pages and portraits arrive as Arrow IPC streams. The device decodes them with
nanoarrow, a small C library, rather than pyarrow: loading pyarrow alone put ~26 MB on a
process's resident memory here, before any data. nanoarrow hands each record batch over as
a C array sharing the received buffers, and DuckDB reads it through the Arrow C stream
interface (a PyCapsule), so rows reach the store without a Python object per value.

Values the device's Python needs (ids, hashes, portrait bytes) nanoarrow converts; where
DuckDB must read personal fields before they are sealed, it does so in :data:`SCRATCH`, an
in-memory DuckDB that never spills to disk, so they never reach a file.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import duckdb
import nanoarrow as na
from nanoarrow.c_array import CArray
from nanoarrow.c_array_stream import CArrayStream
from nanoarrow.c_schema import CSchema
from nanoarrow.ipc import InputStream

from sync_core.duck import DUCKDB_CONFIG
from sync_core.errors import MalformedResponse

log = logging.getLogger(__name__)
# An in-memory DuckDB that never spills to disk (no temporary directory).
SCRATCH = duckdb.connect(config={**DUCKDB_CONFIG, "temp_directory": ""})


class Readable(Protocol):
    """What nanoarrow reads an IPC stream from: a binary file's ``readinto``."""

    def readinto(self, buffer: Any) -> int: ...  # pragma: no cover - a protocol


class ArrowRows:
    """Record batches of one Arrow stream (``schema``), of which DuckDB reads ``columns`` in
    that order. Scanned any number of times: each :meth:`relation` gets a fresh stream over
    the same buffers (no copy)."""

    def __init__(self, schema: CSchema, batches: Sequence[CArray], columns: tuple[str, ...]) -> None:
        self._schema = schema
        self._names = [schema.child(at).name for at in range(schema.n_children)]
        self._batches = list(batches)
        self.columns = columns

    @property
    def num_rows(self) -> int:
        """The rows of every batch."""
        return sum(batch.length for batch in self._batches)

    def relation(self, cur: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
        """The rows as a relation of ``cur`` with only :attr:`columns`, in their order."""
        stream = CArrayStream.from_c_arrays(self._batches, self._schema)
        rows = cur.from_arrow(stream.__arrow_c_stream__())
        return rows.project(", ".join(f'"{name}"' for name in self.columns))

    def values(self, name: str) -> list[Any]:
        """Column ``name``'s values as Python objects, in row order."""
        at = self._names.index(name)
        return [value for batch in self._batches for value in na.Array(batch.child(at)).to_pylist()]

    def tuples(self) -> list[tuple[Any, ...]]:
        """Every row as a tuple of :attr:`columns`' values."""
        places = [self._names.index(name) for name in self.columns]
        columns = ([na.Array(batch.child(at)).to_pylist() for at in places] for batch in self._batches)
        return [row for batch in columns for row in zip(*batch, strict=True)]

    def project(self, columns: tuple[str, ...]) -> ArrowRows:
        """The same rows, of which ``columns`` are read."""
        return ArrowRows(self._schema, self._batches, columns)

    def with_blobs(self, name: str, blobs: list[bytes]) -> ArrowRows:
        """These rows (one record batch) with BLOB column ``name`` after :attr:`columns`,
        holding ``blobs`` row by row. Built by nanoarrow, so DuckDB reads it in one scan:
        8,192 blobs of 200 bytes as a list parameter took ~28 ms here."""
        (batch,) = self._batches
        places = [self._names.index(column) for column in self.columns]
        fields = {column: self._schema.child(at) for column, at in zip(self.columns, places, strict=True)}
        schema = na.c_schema(na.struct({**fields, name: na.binary()}))
        children = [batch.child(at) for at in places] + [na.c_array(blobs, na.binary())]
        return ArrowRows(schema, [_record_batch(schema, batch.length, children)], (*self.columns, name))

    def slices(self, rows: int) -> Iterator[ArrowRows]:
        """These rows as record batches of at most ``rows`` rows each, in order (the columns
        are sliced, not copied)."""
        for batch in self._batches:
            if batch.length <= rows:
                yield ArrowRows(self._schema, [batch], self.columns)
                continue
            for start in range(0, batch.length, rows):
                end = min(start + rows, batch.length)
                children = [batch.child(at)[start:end] for at in range(batch.n_children)]
                yield ArrowRows(
                    self._schema, [_record_batch(self._schema, end - start, children)], self.columns
                )


def _record_batch(schema: CSchema, length: int, children: list[CArray]) -> CArray:
    """A record batch of ``schema`` made of ``children`` (columns of ``length`` rows)."""
    return na.c_array_from_buffers(schema, length, [None], children=children)


class ArrowStream:
    """An Arrow IPC stream being read from ``source`` (a file, a body arriving, bytes), a
    record batch at a time. ``where`` names the source in errors; ``columns`` are those the
    device needs (see :func:`check_columns`).

    Raises MalformedResponse when the stream does not open or lacks a column, and from
    iteration when a batch does not decode.
    """

    def __init__(self, source: Readable | bytes, columns: tuple[str, ...], where: str) -> None:
        self.where = where
        self.columns = columns
        readable = InputStream.from_readable(io.BytesIO(source) if isinstance(source, bytes) else source)
        try:
            self._stream = na.c_array_stream(readable)
            self.schema = self._stream.get_schema()
        except (RuntimeError, ValueError) as exc:
            raise MalformedResponse(f"{where} sent an unreadable Arrow stream") from exc
        names = [self.schema.child(at).name or "" for at in range(self.schema.n_children)]
        check_columns(names, columns, where)

    @property
    def metadata(self) -> dict[bytes, bytes]:
        """The stream's schema metadata (key -> value)."""
        return dict(self.schema.metadata or {})

    def __iter__(self) -> Iterator[ArrowRows]:
        for batch in self._batches():
            yield ArrowRows(self.schema, [batch], self.columns)

    def read_all(self) -> ArrowRows:
        """Every batch of the stream (read to its end) as one :class:`ArrowRows`."""
        return ArrowRows(self.schema, list(self._batches()), self.columns)

    def _batches(self) -> Iterator[CArray]:
        """The stream's record batches as they decode; raises MalformedResponse for one
        that does not."""
        while True:
            try:
                yield self._stream.get_next()
            except StopIteration:
                return
            except (RuntimeError, ValueError) as exc:
                raise MalformedResponse(f"{self.where} sent an unreadable Arrow stream ({exc})") from exc


def check_columns(names: list[str], columns: tuple[str, ...], where: str) -> None:
    """Check the columns ``names`` a stream has against the ``columns`` the device needs.

    A newer server may send columns this device does not know: they are left unread (logged
    once per place and column, see :func:`note_unknown_column`), so an older handheld keeps
    syncing. A needed column that is absent raises MalformedResponse naming it ("server too
    old"), and so does a column sent twice.
    """
    missing = [name for name in columns if name not in names]
    if missing:
        raise MalformedResponse(f"{where}: server too old: column {missing[0]} is missing")
    if len(set(names)) < len(names):
        raise MalformedResponse(f"{where} sent a column twice: {names}")
    for name in names:
        if name not in columns:
            note_unknown_column(columns, name, where)


_unknown_columns: set[tuple[tuple[str, ...], str]] = set()
_unknown_lock = threading.Lock()


def note_unknown_column(columns: tuple[str, ...], name: str, where: str) -> None:
    """Log, once per process for each kind of table (its expected ``columns``) and unknown
    column ``name``, that the column was ignored."""
    with _unknown_lock:
        first = (columns, name) not in _unknown_columns
        _unknown_columns.add((columns, name))
    if first:
        log.warning("%s sent column %r, unknown to this device: ignored", where, name)
