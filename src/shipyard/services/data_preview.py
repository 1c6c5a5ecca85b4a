"""The first rows of a table-shaped data asset, with its schema, read with pyarrow.

An ``mltable`` asset is read as its ``MLTable`` file says (paths, a reader, take/skip/
keep_columns/drop_columns); a ``uri_file`` by its extension (``.csv``, ``.tsv``, ``.parquet``,
``.jsonl``). Files stream from storage: CSV and JSON lines are read from the start only as far
as the rows asked for, Parquet through ranged reads (its footer first, then the row groups
needed), so a preview of a big file reads a small part of it. The server only parses data;
nothing in a file is executed.
"""

from __future__ import annotations

import base64
import io
import json
import math
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from shipyard.domain.asset_uris import DatastorePath, LocalPath, parse_asset_path
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.mltable import (
    FILE_NAME,
    MLTableSpec,
    PathSpec,
    Reader,
    pattern_regex,
    reader_for_file,
    row_window,
)
from shipyard.schemas.data import ColumnRead, DataPreview
from shipyard.services.datastore_uris import Location
from shipyard.storage.base import CHUNK

DEFAULT_ROWS = 20
MAX_ROWS = 1000
#: Rows read at most to serve one preview (skipped ones included).
MAX_SCAN_ROWS = 1_000_000
#: Files a table may span, at most, for a preview.
MAX_FILES = 1000
PATH_COLUMN = "Path"

#: Turns a datastore URI found in an MLTable file into a place (the data service's resolver).
ResolveUri = Callable[[DatastorePath, str], Location]


@dataclass(frozen=True)
class TableFile:
    location: Location
    shown: str  # how the preview names it (relative to the asset, or its URI)


def preview_file(location: Location, rows: int) -> DataPreview:
    """A ``uri_file``: read by its extension."""
    name = posixpath.basename(location.key)
    reader = reader_for_file(name)
    if reader is None:
        raise _unsupported(f"{name!r} is not a .csv, .tsv, .parquet or .jsonl file")
    return _preview([TableFile(location, name)], reader, (), rows)


def preview_table(
    folder: Location, spec: MLTableSpec, rows: int, resolve_uri: ResolveUri
) -> DataPreview:
    """An ``mltable``: the files its paths name, read as its transformations say."""
    files = _table_files(folder, spec.paths, resolve_uri)
    if not files:
        raise InvalidInputError(
            "the MLTable's paths name no files", code="empty_table", field=f"{FILE_NAME}.paths"
        )
    reader = spec.reader or reader_for_file(files[0].shown)
    if reader is None:
        raise _unsupported(
            "the MLTable names no read transformation and its first file's extension does not "
            "say how to read it; add read_delimited, read_parquet or read_json_lines"
        )
    return _preview(files, reader, spec.transforms, rows)


def _table_files(
    folder: Location, paths: tuple[PathSpec, ...], resolve_uri: ResolveUri
) -> list[TableFile]:
    """Every file the paths name, in order (a folder's and a pattern's files sorted)."""
    found: list[TableFile] = []
    for index, spec in enumerate(paths):
        field = f"{FILE_NAME}.paths.{index}.{spec.kind}"
        prefix, glob = _split_glob(spec.value) if spec.kind == "pattern" else (spec.value, "")
        start = _start(folder, prefix, resolve_uri, field)
        if spec.kind == "file":
            if not start.storage.exists(start.key):
                raise InvalidInputError(
                    f"{spec.value!r} does not exist", code="file_not_found", field=field
                )
            found.append(TableFile(start, _shown(folder, start)))
        else:
            regex = pattern_regex(glob) if glob else None
            for info in start.storage.list(start.key, recursive=True):
                rel = posixpath.relpath(info.path, start.key)
                name = posixpath.basename(rel)
                if (
                    name == FILE_NAME
                    or name.startswith(".")
                    or (regex and not regex.fullmatch(rel))
                ):
                    continue
                target = start.child(rel, field=field)
                found.append(TableFile(target, _shown(folder, target)))
        if len(found) > MAX_FILES:
            raise InvalidInputError(
                f"the table spans more than {MAX_FILES} files; preview a narrower pattern",
                code="too_many_files",
                field=f"{FILE_NAME}.paths",
            )
    return found


def _split_glob(value: str) -> tuple[str, str]:
    """``./parts/*.csv`` → (``./parts``, ``*.csv``): the folder to list, and the glob."""
    parts = value.split("/")
    for index, part in enumerate(parts):
        if any(char in part for char in "*?["):
            return "/".join(parts[:index]), "/".join(parts[index:])
    return value, ""


def _start(folder: Location, value: str, resolve_uri: ResolveUri, field: str) -> Location:
    """Where a path of the MLTable points: relative paths start at the MLTable's folder."""
    parsed = parse_asset_path(value or ".", field=field)
    if isinstance(parsed, LocalPath):
        return folder.child(parsed.path, field=field)
    if isinstance(parsed, DatastorePath):
        return resolve_uri(parsed, field)
    raise _unsupported(
        f"{value!r} is not in a datastore; the server previews files in datastores only", field
    )


def _shown(folder: Location, target: Location) -> str:
    """A file as the preview names it: relative to the MLTable, else its datastore URI."""
    inside = target.datastore == folder.datastore and target.storage is folder.storage
    if inside and (target.key + "/").startswith(folder.key + "/"):
        return posixpath.relpath(target.key, folder.key)
    return target.uri


def _preview(
    files: list[TableFile], reader: Reader, transforms: tuple[Any, ...], rows: int
) -> DataPreview:
    offset, limit = row_window(transforms)
    wanted = rows if limit is None else min(rows, limit)
    if offset + wanted > MAX_SCAN_ROWS:
        raise InvalidInputError(
            f"a preview reads at most {MAX_SCAN_ROWS} rows; this one would skip {offset}",
            code="preview_too_deep",
            field="rows",
        )
    table = _read_rows(files, reader, offset + wanted)
    table = table.slice(offset, wanted)
    for step in transforms:
        if step.kind in ("keep_columns", "drop_columns"):
            table = _select(table, step.kind, step.columns, step.field)
    return DataPreview(
        columns=[ColumnRead(name=f.name, type=str(f.type)) for f in table.schema],
        rows=[[_json_safe(v) for v in row.values()] for row in table.to_pylist()],
        files=[f.shown for f in files],
    )


def _select(table: pa.Table, kind: str, columns: tuple[str, ...], field: str) -> pa.Table:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"{kind}: no column {missing[0]!r} (columns: {', '.join(table.column_names)})",
            code="unknown_column",
            field=f"{field}.{kind}",
        )
    if kind == "keep_columns":
        return table.select(list(columns))
    return table.drop_columns(list(columns))


def _read_rows(files: list[TableFile], reader: Reader, needed: int) -> pa.Table:
    tables: list[pa.Table] = []
    have = 0
    names: list[str] | None = None
    for index, item in enumerate(files):
        if have >= needed and tables:
            break
        try:
            if reader.format == "parquet":
                table = _parquet(item.location, needed - have)
            elif reader.format == "json_lines":
                table = _json_lines(item.location, reader, needed - have)
            else:
                table, names = _delimited(item.location, reader, needed - have, index, names)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise InvalidInputError(
                f"{item.shown!r} cannot be read as {reader.format.replace('_', ' ')}: {exc}",
                code="unreadable_data",
                field="path",
            ) from exc
        if reader.include_path_column:
            table = table.append_column(PATH_COLUMN, pa.array([item.shown] * table.num_rows))
        tables.append(table)
        have += table.num_rows
    if not tables:
        return pa.table({})
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInputError(
            f"the table's files do not share one schema: {exc}",
            code="unreadable_data",
            field="path",
        ) from exc


def _delimited(
    location: Location, reader: Reader, needed: int, index: int, names: list[str] | None
) -> tuple[pa.Table, list[str] | None]:
    """CSV-like text, streamed in 1 MiB blocks until ``needed`` rows are in."""
    header = reader.header
    has_header = header != "no_header" and (index == 0 or header != "from_first_file")
    read_options = pa_csv.ReadOptions(
        encoding=reader.encoding,
        block_size=CHUNK,
        autogenerate_column_names=header == "no_header",
        column_names=names if not has_header and header == "from_first_file" else None,
    )
    parse_options = pa_csv.ParseOptions(
        delimiter=reader.delimiter, newlines_in_values=reader.support_multi_line
    )
    convert_options = pa_csv.ConvertOptions(strings_can_be_null=not reader.empty_as_string)
    stream = pa_csv.open_csv(
        _StorageStream(location.storage.read(location.key)),
        read_options=read_options,
        parse_options=parse_options,
        convert_options=convert_options,
    )
    batches, have = [], 0
    for batch in stream:
        batches.append(batch)
        have += batch.num_rows
        if have >= needed:
            break
    table = pa.Table.from_batches(batches, schema=stream.schema).slice(0, needed)
    if header == "no_header":
        table = table.rename_columns([f"Column{i + 1}" for i in range(table.num_columns)])
    if not reader.infer_column_types:
        table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
    return table, names or table.column_names


def _parquet(location: Location, needed: int) -> pa.Table:
    size = location.storage.stat(location.key).size
    handle = io.BufferedReader(_RangedFile(location, size), buffer_size=CHUNK)
    parquet = pq.ParquetFile(handle)
    batches = []
    have = 0
    for batch in parquet.iter_batches(batch_size=max(1, min(needed, 65_536))):
        batches.append(batch)
        have += batch.num_rows
        if have >= needed:
            break
    return pa.Table.from_batches(batches, schema=parquet.schema_arrow).slice(0, needed)


def _json_lines(location: Location, reader: Reader, needed: int) -> pa.Table:
    records: list[dict[str, Any]] = []
    text = io.TextIOWrapper(
        io.BufferedReader(_StorageStream(location.storage.read(location.key))),
        encoding=reader.encoding,
        errors="strict",
    )
    for number, line in enumerate(text, start=1):
        if len(records) >= needed:
            break
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            if reader.drop_invalid_lines:
                continue
            raise pa.ArrowInvalid(f"line {number} is not JSON ({exc})") from exc
        if not isinstance(record, dict):
            if reader.drop_invalid_lines:
                continue
            raise pa.ArrowInvalid(f"line {number} is not a JSON object")
        records.append(record)
    return pa.Table.from_pylist(records)


class _StorageStream(io.RawIOBase):
    """A storage download as a read-only, forward-only file (what CSV and text readers need)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _RangedFile(io.RawIOBase):
    """A stored file with ranged reads, for Parquet's footer-first access."""

    def __init__(self, location: Location, size: int) -> None:
        self._location = location
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._size, self._position + len(view))
        if end <= self._position:
            return 0
        got = 0
        for chunk in self._location.storage.read(self._location.key, start=self._position, end=end):
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
        self._position += got
        return got


def _json_safe(value: Any) -> Any:
    """A cell as JSON can carry it: NaN and infinities as text, dates as ISO 8601, bytes as
    base64."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Decimal | timedelta):
        return str(value)
    return str(value)


def _unsupported(why: str, field: str = "path") -> InvalidInputError:
    return InvalidInputError(why, code="preview_unsupported", field=field)
