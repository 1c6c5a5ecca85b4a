"""``search_experiments`` filters and ordering, evaluated over a workspace's experiments.

The filter grammar is the part of MLflow's that experiments use: comparisons joined by
``AND``; each is ``name`` (also ``attribute.name``) or ``tags.<key>`` (back-ticks or double
quotes around a key with dots or spaces), then ``=``, ``!=``, ``LIKE`` or ``ILIKE``, then a
quoted string. ``LIKE`` patterns use ``%`` and ``_``. Order keys: ``name``,
``creation_time``, ``last_update_time``, ``experiment_id``, each ``ASC`` (default) or ``DESC``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.domain.errors import InvalidInputError
from shipyard.mlflow import schemas as m

_COMPARISON = re.compile(
    r"""\s*(?:(?:attributes?|attr)\.)?
    (?:(?P<name>name)|tags?\.(?:`(?P<bt>[^`]+)`|"(?P<dq>[^"]+)"|(?P<word>[\w.\-/ :]+?)))
    \s*(?P<op>=|!=|(?i:I?LIKE))\s*
    (?:'(?P<sq_value>(?:[^']|'')*)'|"(?P<dq_value>(?:[^"]|"")*)")\s*""",
    re.VERBOSE | re.IGNORECASE,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_ORDER = re.compile(
    r"\s*(?:(?:attributes?|attr)\.)?(?P<key>name|creation_time|last_update_time|experiment_id)"
    r"(?:\s+(?P<dir>ASC|DESC))?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Test:
    tag: str | None  # None: the experiment's name
    op: str
    value: str

    def __call__(self, experiment: m.Experiment) -> bool:
        if self.tag is None:
            actual: str | None = experiment.name
        else:
            actual = next((t.value for t in experiment.tags if t.key == self.tag), None)
        if actual is None:
            return False
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        flags = re.IGNORECASE if self.op == "ILIKE" else 0
        return re.fullmatch(_like_regex(self.value), actual, flags | re.DOTALL) is not None


def _like_regex(pattern: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)


def _split_and(text: str) -> list[str]:
    """Split on AND outside quotes."""
    parts, start, quote = [], 0, ""
    for match in re.finditer(r"'|\"|`|\s+AND\s+", text, re.IGNORECASE):
        token = match.group(0)
        if token in ("'", '"', "`"):
            quote = "" if quote == token else (quote or token)
        elif not quote:
            parts.append(text[start : match.start()])
            start = match.end()
    parts.append(text[start:])
    return parts


def parse_filter(text: str | None) -> Callable[[m.Experiment], bool]:
    if not text or not text.strip():
        return lambda _: True
    tests = []
    for part in _split_and(text):
        found = _COMPARISON.fullmatch(part)
        if found is None:
            raise InvalidInputError(
                f"invalid experiment filter {part.strip()!r}: use name or tags.<key> with "
                "=, !=, LIKE or ILIKE and a quoted string, joined by AND",
                code="invalid_filter",
                field="filter",
            )
        tag = None if found["name"] else (found["bt"] or found["dq"] or found["word"]).strip()
        if found["sq_value"] is not None:
            value = found["sq_value"].replace("''", "'")
        else:
            value = (found["dq_value"] or "").replace('""', '"')
        tests.append(_Test(tag, found["op"].upper(), value))
    return lambda experiment: all(test(experiment) for test in tests)


def sort(experiments: list[m.Experiment], order_by: list[str]) -> list[m.Experiment]:
    """MLflow's default order is newest first, then by id."""
    keys = [_parse_order(item) for item in order_by] or [("creation_time", True)]
    result = sorted(experiments, key=lambda e: e.experiment_id)
    for key, descending in reversed(keys):
        result.sort(key=lambda e, k=key: getattr(e, k), reverse=descending)  # type: ignore[misc]
    return result


def _parse_order(item: str) -> tuple[str, bool]:
    found = _ORDER.fullmatch(item)
    if found is None:
        raise InvalidInputError(
            f"invalid order_by {item!r}: use name, creation_time, last_update_time or "
            "experiment_id, optionally followed by ASC or DESC",
            code="invalid_order_by",
            field="order_by",
        )
    return found["key"].lower(), (found["dir"] or "ASC").upper() == "DESC"
