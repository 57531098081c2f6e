"""The device's reading of the server's Arrow streams: columns it needs in its order, parts
of bounded rows, and a clear error for a stream that is not one."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.ipc
import pytest

from sync_core.device.arrow_rows import ArrowStream
from sync_core.errors import MalformedResponse

ROWS = 100


def _stream(table: pa.Table, batch_rows: int = 40) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=batch_rows)
    return sink.getvalue().to_pybytes()


def _table() -> pa.Table:
    numbers = range(ROWS)
    return pa.table(
        {"id": [f"P{n}" for n in numbers], "n": list(numbers), "tags": [[str(n)] for n in numbers]}
    )


def test_rows_are_read_in_the_devices_column_order() -> None:
    rows = ArrowStream(_stream(_table()), ("tags", "id"), "test").read_all()
    assert rows.num_rows == ROWS
    assert rows.tuples() == [([str(n)], f"P{n}") for n in range(ROWS)]


def test_parts_keep_every_row_once_in_order() -> None:
    rows = ArrowStream(_stream(_table()), ("id", "n"), "test").read_all()
    parts = list(rows.slices(15))
    assert max(part.num_rows for part in parts) == 15
    assert [n for part in parts for n in part.values("n")] == list(range(ROWS))
    assert [row for part in parts for row in part.tuples()] == rows.tuples()
    with duckdb.connect() as con:
        assert [row for part in parts for row in part.relation(con).fetchall()] == rows.tuples()


def test_blobs_join_their_rows() -> None:
    rows = ArrowStream(_stream(_table()), ("id", "n"), "test").read_all()
    part = next(rows.slices(15)).project(("id",))
    blobs = [f"sealed {n}".encode() for n in range(15)]
    with duckdb.connect() as con:
        joined = part.with_blobs("sealed", blobs).relation(con)
        assert joined.columns == ["id", "sealed"]
        assert joined.fetchall() == [(f"P{n}", blob) for n, blob in enumerate(blobs)]


def test_duckdb_reads_only_the_columns_the_device_needs() -> None:
    rows = ArrowStream(_stream(_table()), ("n", "id"), "test").read_all()
    with duckdb.connect() as con:
        relation = rows.relation(con)
        assert relation.columns == ["n", "id"]
        assert relation.aggregate("count(*), sum(n)").fetchall() == [(ROWS, sum(range(ROWS)))]


def test_a_missing_column_names_it() -> None:
    with pytest.raises(MalformedResponse, match="server too old: column cabin is missing"):
        ArrowStream(_stream(_table()), ("id", "cabin"), "test")


@pytest.mark.parametrize("cut", [0.0, 0.5, 0.9])
def test_a_stream_that_is_not_one_is_malformed(cut: float) -> None:
    data = _stream(_table())
    with pytest.raises(MalformedResponse, match="unreadable Arrow stream"):
        stream = ArrowStream(
            b"<html>portal</html>" if cut == 0 else data[: int(len(data) * cut)], ("id",), "t"
        )
        stream.read_all()
