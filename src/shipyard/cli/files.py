"""Resource files on the command line: an error about a field the file set names its line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shipyard.domain.errors import ShipyardError
from shipyard.sdk.yaml import YamlDocument

T = TypeVar("T")


def with_file(
    document: YamlDocument | None,
    call: Callable[[], T],
    from_flags: frozenset[str] = frozenset(),
) -> T:
    """Run an SDK call; an error about a field the file set is reported at the file's line
    (not one a flag such as -n set: the file is not at fault then)."""
    try:
        return call()
    except ShipyardError as exc:
        if document is not None and exc.field and exc.field.split(".")[0] not in from_flags:
            raise document.error(exc) from exc
        raise
