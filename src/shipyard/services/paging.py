"""Keyset paging shared by every list: fetch one row more than asked to know if more follow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from shipyard.domain.paging import encode_page_token

Row = TypeVar("Row")


def split_page(
    rows: Sequence[Row], limit: int, key: Callable[[Row], str]
) -> tuple[list[Row], str | None]:
    """The first ``limit`` rows and the token that continues after them (None at the end)."""
    page = list(rows[:limit])
    if len(rows) > limit and page:
        return page, encode_page_token(key(page[-1]))
    return page, None
