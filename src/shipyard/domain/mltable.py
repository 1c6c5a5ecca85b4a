"""The ``MLTable`` file of an ``mltable`` data asset: where its rows are and how to read them.

Azure ML's shape::

    type: mltable
    paths:
      - file: ./train.csv          # or folder: ./parts, or pattern: ./parts/*.parquet
    transformations:
      - read_delimited: {delimiter: ",", header: all_files_same_headers, encoding: utf8}
      - skip: 10
      - take: 100
      - keep_columns: [age, income]   # or drop_columns

The readers (``read_delimited``, ``read_parquet``, ``read_json_lines``) and the transforms
``take``, ``skip``, ``keep_columns`` and ``drop_columns`` are supported. Anything else Azure
knows (``filter``, ``convert_column_types``, ``take_random_sample``...) is refused when the
asset is created, naming the transformation, rather than silently ignored at preview time.
This module only checks the parsed document; reading files is the services' job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.domain.errors import InvalidInputError

FILE_NAME = "MLTable"
PathKind = Literal["file", "folder", "pattern"]
TransformKind = Literal["take", "skip", "keep_columns", "drop_columns"]
_PATH_KINDS: dict[str, PathKind] = {"file": "file", "folder": "folder", "pattern": "pattern"}
_COUNTS: dict[str, TransformKind] = {"take": "take", "skip": "skip"}
_COLUMN_LISTS: dict[str, TransformKind] = {
    "keep_columns": "keep_columns",
    "drop_columns": "drop_columns",
}
Format = Literal["delimited", "parquet", "json_lines"]
HEADERS = ("all_files_same_headers", "from_first_file", "no_header", "all_files_different_headers")
#: Azure's encoding names → Python's codec names (pyarrow takes the latter).
ENCODINGS = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "utf8bom": "utf-8-sig",
    "ascii": "ascii",
    "iso88591": "latin-1",
    "latin1": "latin-1",
    "windows1252": "cp1252",
    "utf16": "utf-16",
    "utf32": "utf-32",
}
_READERS: dict[str, Format] = {
    "read_delimited": "delimited",
    "read_parquet": "parquet",
    "read_json_lines": "json_lines",
}
_READER_OPTIONS: dict[Format, frozenset[str]] = {
    "delimited": frozenset(
        {
            "delimiter",
            "header",
            "encoding",
            "empty_as_string",
            "include_path_column",
            "infer_column_types",
            "support_multi_line",
        }
    ),
    "parquet": frozenset({"include_path_column"}),
    "json_lines": frozenset({"encoding", "include_path_column", "invalid_lines"}),
}
_TOP_LEVEL = frozenset({"$schema", "type", "paths", "transformations", "traits", "metadata"})
_EXTENSIONS: dict[str, Format] = {
    ".csv": "delimited",
    ".tsv": "delimited",
    ".txt": "delimited",
    ".parquet": "parquet",
    ".jsonl": "json_lines",
    ".json": "json_lines",
}
MAX_PATHS = 100


@dataclass(frozen=True)
class PathSpec:
    kind: PathKind
    value: str


@dataclass(frozen=True)
class Reader:
    format: Format
    delimiter: str = ","
    header: str = "all_files_same_headers"
    encoding: str = "utf-8"
    include_path_column: bool = False
    infer_column_types: bool = True
    empty_as_string: bool = False
    support_multi_line: bool = False
    drop_invalid_lines: bool = False


@dataclass(frozen=True)
class Transform:
    kind: TransformKind
    count: int = 0
    columns: tuple[str, ...] = ()
    field: str = ""  # where it is in the file, for errors found while reading


@dataclass(frozen=True)
class MLTableSpec:
    paths: tuple[PathSpec, ...]
    reader: Reader | None
    transforms: tuple[Transform, ...]


def reader_for_file(name: str) -> Reader | None:
    """The reader a file's extension suggests (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``)."""
    lowered = name.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return Reader(fmt, delimiter="\t" if extension == ".tsv" else ",")
    return None


def row_window(transforms: tuple[Transform, ...]) -> tuple[int, int | None]:
    """take/skip, applied in order, as (rows to skip from the start, rows to keep or None)."""
    offset, limit = 0, None
    for step in transforms:
        if step.kind == "skip":
            offset += step.count
            limit = None if limit is None else max(0, limit - step.count)
        elif step.kind == "take":
            limit = step.count if limit is None else min(limit, step.count)
    return offset, limit


def parse_mltable(data: Any, *, field: str = FILE_NAME) -> MLTableSpec:
    if not isinstance(data, dict):
        raise _invalid("must hold a mapping (paths, transformations)", field)
    unknown = sorted(str(k) for k in data if k not in _TOP_LEVEL)
    if unknown:
        raise _invalid(f"has an unknown field {unknown[0]!r}", f"{field}.{unknown[0]}")
    if data.get("type", "mltable") != "mltable":
        raise _invalid("type must be mltable", f"{field}.type")
    paths = _paths(data.get("paths"), f"{field}.paths")
    transforms_data = data.get("transformations") or []
    if not isinstance(transforms_data, list):
        raise _invalid("must be a list", f"{field}.transformations")
    reader: Reader | None = None
    transforms: list[Transform] = []
    for index, item in enumerate(transforms_data):
        where = f"{field}.transformations.{index}"
        name, value = _single_key(item, where)
        if name in _READERS:
            if reader is not None or transforms:
                raise _invalid("a read transformation must come first, once", where)
            reader = _reader(_READERS[name], value, f"{where}.{name}")
        elif name in _COUNTS:
            count = _count(value, f"{where}.{name}")
            transforms.append(Transform(_COUNTS[name], count=count, field=where))
        elif name in _COLUMN_LISTS:
            columns = _columns(value, f"{where}.{name}")
            transforms.append(Transform(_COLUMN_LISTS[name], columns=columns, field=where))
        else:
            supported = ", ".join([*_READERS, "take", "skip", "keep_columns", "drop_columns"])
            raise InvalidInputError(
                f"transformation {name!r} is not supported here; supported: {supported}",
                code="unsupported_transformation",
                field=where,
            )
    return MLTableSpec(tuple(paths), reader, tuple(transforms))


def _paths(value: Any, field: str) -> list[PathSpec]:
    if not isinstance(value, list) or not value:
        raise _invalid("must list at least one of file:, folder: or pattern:", field)
    if len(value) > MAX_PATHS:
        raise _invalid(f"may list at most {MAX_PATHS} entries", field)
    found = []
    for index, item in enumerate(value):
        kind, target = _single_key(item, f"{field}.{index}")
        if not isinstance(target, str) or not target.strip():
            raise _invalid("must be a non-empty path", f"{field}.{index}.{kind}")
        if kind not in _PATH_KINDS:
            raise _invalid("must be file:, folder: or pattern:", f"{field}.{index}")
        found.append(PathSpec(_PATH_KINDS[kind], target.strip()))
    return found


def _single_key(item: Any, field: str) -> tuple[str, Any]:
    if not isinstance(item, dict) or len(item) != 1:
        raise _invalid("must be a mapping with one key", field)
    ((key, value),) = item.items()
    return str(key), value


def _reader(fmt: Format, options: Any, field: str) -> Reader:
    options = options or {}
    if not isinstance(options, dict):
        raise _invalid("must be a mapping of options", field)
    unknown = sorted(str(k) for k in options if k not in _READER_OPTIONS[fmt])
    if unknown:
        raise _invalid(f"has an unknown option {unknown[0]!r}", f"{field}.{unknown[0]}")
    delimiter = options.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise _invalid("must be one character (not a quote or a newline)", f"{field}.delimiter")
    header = options.get("header", "all_files_same_headers")
    if header not in HEADERS:
        raise _invalid(f"must be one of {', '.join(HEADERS)}", f"{field}.header")
    encoding = str(options.get("encoding", "utf8")).lower()
    if encoding not in ENCODINGS:
        raise _invalid(f"must be one of {', '.join(sorted(ENCODINGS))}", f"{field}.encoding")
    invalid_lines = options.get("invalid_lines", "error")
    if invalid_lines not in ("error", "drop"):
        raise _invalid("must be error or drop", f"{field}.invalid_lines")
    return Reader(
        fmt,
        delimiter=delimiter,
        header=header,
        encoding=ENCODINGS[encoding],
        include_path_column=_flag(options, "include_path_column", False, field),
        infer_column_types=_flag(options, "infer_column_types", True, field),
        empty_as_string=_flag(options, "empty_as_string", False, field),
        support_multi_line=_flag(options, "support_multi_line", False, field),
        drop_invalid_lines=invalid_lines == "drop",
    )


def _flag(options: dict[str, Any], name: str, default: bool, field: str) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise _invalid("must be true or false", f"{field}.{name}")
    return value


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid("must be a whole number of rows, 0 or more", field)
    return value


def _columns(value: Any, field: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _invalid("must be a column name or a list of column names", field)
    return tuple(names)


def _invalid(why: str, field: str) -> InvalidInputError:
    return InvalidInputError(f"{field} {why}", code="invalid_mltable", field=field)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A glob of ``paths: - pattern:`` as a regex over relative POSIX paths: ``*`` and ``?``
    stay within a folder, ``**/`` spans any number of folders."""
    out, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out))
