"""Rows of a device store as the server sends them: written through sealing, read back opened
(tests compare the synced data, which the store keeps sealed)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.ipc

from sync_core.device import DeviceStore
from sync_core.device.arrow_rows import ArrowRows, ArrowStream
from sync_core.device.sealing import SEALED_COLUMN, SEALED_FIELDS
from sync_core.device.store import insert_rows
from sync_core.protocol import DATASET_COLUMNS, id_column

_ARROW = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "DATE": pa.date32(), "BLOB": pa.binary()}


def put_rows(store: DeviceStore, key: str, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (wire column -> value; absent columns NULL) into dataset ``key``, sealed
    as a sync seals them (the store must be unlocked); a portrait's bytes go to its file."""
    if key == "pictures":
        for row in rows:
            store.portraits.write(row["sha256"], row["jpeg"])
        rows = [{**row, "jpeg": None} for row in rows]
    with store.db.cursor() as cur:
        for part, sealed in store.seal(key, wire_rows(key, rows)):
            insert_rows(cur, key, key, part, sealed)


def wire_rows(key: str, rows: list[dict[str, Any]]) -> ArrowRows:
    """``rows`` of dataset ``key`` (wire column -> value; absent columns NULL) as the device's
    client reads them off the wire."""
    columns = tuple(name for name, _ in DATASET_COLUMNS[key])
    return ArrowStream(arrow_stream(key, rows), columns, key).read_all()


def arrow_stream(key: str, rows: list[dict[str, Any]]) -> bytes:
    """``rows`` of dataset ``key`` (wire column -> value; absent columns NULL) as an Arrow
    stream of the server's."""
    schema = pa.schema([(name, _ARROW[kind]) for name, kind in DATASET_COLUMNS[key]])
    table = pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def opened_rows(store: DeviceStore, key: str) -> list[dict[str, Any]]:
    """Every row of dataset ``key`` by id, wire column -> value, sealed fields opened."""
    ident = id_column(key)
    with store.db.cursor() as cur:
        result = cur.execute(f'SELECT * FROM "{key}" ORDER BY "{ident}"')
        names = [column[0] for column in result.description]
        rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    for row in rows:
        if key in SEALED_FIELDS:
            row |= store.sealer.open_fields(key, row[ident], row.pop(SEALED_COLUMN))
        elif key == "pictures":
            row["jpeg"] = store.portrait(row["sha256"])
    return [{name: row[name] for name, _ in DATASET_COLUMNS[key]} for row in rows]
