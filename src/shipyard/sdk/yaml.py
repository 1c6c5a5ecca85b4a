"""Loading resource YAML files with errors that name the file, the line and the field.

Files are parsed with PyYAML's safe loader and kept with the line of every field, so a
server error about ``tags.team`` can point at the line that set it. ``--set a.b=value``
overrides are applied after loading, as Azure ML's CLI does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from shipyard.domain.errors import InvalidInputError, ShipyardError

MAX_FILE_BYTES = 1_048_576
# Aliases are followed by reference; a document that unfolds into more nodes than this is a
# "billion laughs" bomb, not a resource definition.
MAX_NODES = 100_000


class YamlFileError(InvalidInputError):
    def __init__(
        self,
        path: str,
        line: int | None,
        detail: str,
        *,
        field: str | None = None,
        code: str = "invalid_yaml",
    ):
        where = f"{path}:{line}" if line else path
        at = f" field '{field}':" if field else ""
        if field and detail.startswith(f"{field}: "):
            detail = detail[len(field) + 2 :]  # the server's detail may start with the field too
        super().__init__(f"{where}:{at} {detail}", code=code, field=field)
        self.path = path
        self.line = line


@dataclass
class YamlDocument:
    path: str
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, dotted: str | None) -> int | None:
        """The line of a field, or of its closest parent that the file has."""
        while dotted:
            if dotted in self.lines:
                return self.lines[dotted]
            dotted = dotted.rpartition(".")[0]
        return None

    def error(self, exc: ShipyardError) -> YamlFileError:
        """Re-state an error about a field (from the server or a check) as file:line.

        The error keeps its code: a duplicate name stays ``workspace_exists``, not ``invalid_yaml``.
        """
        return YamlFileError(
            self.path, self.line_of(exc.field), exc.detail, field=exc.field, code=exc.code
        )


def load_yaml_file(path: str | Path, overrides: Iterable[str] = ()) -> YamlDocument:
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise YamlFileError(name, None, f"cannot read the file: {exc.strerror}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise YamlFileError(name, None, f"the file is larger than {MAX_FILE_BYTES} bytes")
    document = parse_yaml(raw.decode("utf-8", errors="replace"), name)
    for item in overrides:
        apply_override(document, item)
    return document


def parse_yaml(text: str, name: str) -> YamlDocument:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[str, int] = {}
        if node is not None:
            if _count_nodes(node, MAX_NODES) > MAX_NODES:
                raise YamlFileError(name, None, f"the document unfolds into over {MAX_NODES} nodes")
            _record_lines(node, "", lines)
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlFileError(name, line, f"not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(name, None, f"not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise YamlFileError(name, 1, "the file must hold a mapping of field names to values")
    return YamlDocument(name, data, lines)


def _count_nodes(node: Node, limit: int) -> int:
    """Nodes visited when every alias is unfolded, counting no further than just past limit."""
    seen, stack = 0, [node]
    while stack and seen <= limit:
        current = stack.pop()
        seen += 1
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                stack.extend((key_node, value_node))
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
    return seen


def _record_lines(node: Node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            lines.setdefault(key, key_node.start_mark.line + 1)
            _record_lines(value_node, key, lines)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            key = f"{prefix}.{index}"
            lines.setdefault(key, item.start_mark.line + 1)
            _record_lines(item, key, lines)


def apply_override(document: YamlDocument, item: str) -> None:
    set_path(document.data, *parse_override(item))


def parse_override(item: str) -> tuple[str, Any]:
    """``path.to.field=value`` as (path, value); the value is read as YAML (1 is a number)."""
    path, sep, raw_value = item.partition("=")
    if not sep or not path:
        raise InvalidInputError(
            f"--set {item!r} must look like path.to.field=value", code="invalid_set", field="set"
        )
    return path, _override_value(raw_value, path)


def _override_value(raw_value: str, path: str) -> Any:
    """A --set value read as YAML, under the same alias-unfolding limit as a file."""
    if not raw_value:
        return ""
    loader = yaml.SafeLoader(raw_value)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _count_nodes(node, MAX_NODES) > MAX_NODES:
            raise InvalidInputError(
                f"--set {path}: the value unfolds into over {MAX_NODES} nodes",
                code="invalid_set",
                field=path,
            )
        return loader.construct_document(node)
    except yaml.YAMLError:
        return raw_value  # not YAML: the text itself
    finally:
        loader.dispose()


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    target = data
    for key in keys[:-1]:
        child = target.get(key)
        if child is None:
            child = target[key] = {}
        if not isinstance(child, dict):
            raise InvalidInputError(
                f"--set {path}: {key!r} is not a mapping", code="invalid_set", field=path
            )
        target = child
    target[keys[-1]] = value
