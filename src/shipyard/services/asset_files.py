"""The files of a registered asset (a data version, a model version): list, stat, read, and
the small descriptor files the server itself reads (``MLTable``, ``MLmodel``).

An asset's files are a ``Location``: a file or a folder in a datastore. Paths a client gives
are relative to it and cleaned (``Location.child``), so a download never leaves the asset.
The server reads descriptor files as text and parses them with YAML's safe loader, under a
size limit and an alias-expansion limit; it never imports or unpickles anything.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.schemas.data import DataFileRead
from shipyard.services.datastore_uris import Location
from shipyard.storage.base import FileInfo
from shipyard.storage.paths import clean_relative

#: A descriptor file (MLTable, MLmodel) larger than this is not one.
MAX_DESCRIPTOR_BYTES = 1024 * 1024
#: Nodes a descriptor may unfold into (aliases included): beyond is a "billion laughs" bomb.
MAX_YAML_NODES = 100_000


def list_files(location: Location, path: str = "", *, recursive: bool = False) -> list[FileInfo]:
    """Entries under ``path`` (relative to the asset) with paths relative to the asset; a file
    asset lists as itself, by its name."""
    target = location.child(path)
    storage = location.storage
    if storage.exists(target.key):
        info = storage.stat(target.key)
        if not info.is_dir:
            name = posixpath.relpath(target.key, location.key)
            shown = posixpath.basename(target.key) if name == "." else name
            return [FileInfo(shown, False, info.size, info.modified)]
    found = storage.list(target.key, recursive=recursive)
    return [
        FileInfo(posixpath.relpath(i.path, location.key), i.is_dir, i.size, i.modified)
        for i in found
    ]


def file_reads(infos: list[FileInfo]) -> list[DataFileRead]:
    return [DataFileRead(path=i.path, is_dir=i.is_dir, size=i.size) for i in infos]


def resolve_file(location: Location, path: str) -> Location:
    """The file ``path`` names in the asset; a file asset is reached by its own name (or by
    an empty path)."""
    clean = clean_relative(path)
    storage = location.storage
    own = storage.stat(location.key) if storage.exists(location.key) else None
    if own is not None and not own.is_dir:
        if clean in ("", posixpath.basename(location.key)):
            return location
        raise NotFoundError(f"no file at {path!r}", code="file_not_found", field="path")
    target = location.child(clean)
    if not clean or (storage.exists(target.key) and storage.stat(target.key).is_dir):
        raise InvalidInputError(
            f"{path!r} is a folder; list it with ?path=", code="path_is_folder", field="path"
        )
    if not storage.exists(target.key):
        raise NotFoundError(f"no file at {path!r}", code="file_not_found", field="path")
    return target


def file_size(location: Location) -> int:
    return location.storage.stat(location.key).size


def read(location: Location, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    return location.storage.read(location.key, start=start, end=end)


def read_descriptor(location: Location, *, field: str) -> str | None:
    """A small text file (MLTable, MLmodel) as text; None when there is no such file."""
    storage = location.storage
    if not storage.exists(location.key):
        return None
    info = storage.stat(location.key)
    name = posixpath.basename(location.key)
    if info.is_dir:
        raise InvalidInputError(f"{name} is a folder, not a file", code="invalid_path", field=field)
    if info.size > MAX_DESCRIPTOR_BYTES:
        raise InvalidInputError(
            f"{name} is larger than {MAX_DESCRIPTOR_BYTES} bytes", code="invalid_path", field=field
        )
    raw = b"".join(storage.read(location.key, end=MAX_DESCRIPTOR_BYTES + 1))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{name} is not UTF-8 text", code="invalid_descriptor", field=field
        ) from exc


def load_yaml(text: str, *, name: str, field: str) -> Any:
    """Safe YAML with an alias-expansion limit; errors name the file and its line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _count_nodes(node) > MAX_YAML_NODES:
            raise InvalidInputError(
                f"{name} unfolds into over {MAX_YAML_NODES} YAML nodes",
                code="invalid_descriptor",
                field=field,
            )
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise InvalidInputError(
            f"{name} is not valid YAML{where}: {exc.problem or exc}",
            code="invalid_descriptor",
            field=field,
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"{name} is not valid YAML: {exc}", code="invalid_descriptor", field=field
        ) from exc
    finally:
        loader.dispose()


def _count_nodes(node: Node) -> int:
    seen, stack = 0, [node]
    while stack and seen <= MAX_YAML_NODES:
        current = stack.pop()
        seen += 1
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                stack.extend((key_node, value_node))
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
    return seen
