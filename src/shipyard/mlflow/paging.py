"""Offset page tokens for the lists the MLflow surface pages itself (search, metric history)."""

from __future__ import annotations

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.paging import decode_page_token, encode_page_token


def offset_of(page_token: str | None) -> int:
    after = decode_page_token(page_token)
    if after is None:
        return 0
    if not after.isdigit():
        raise InvalidInputError(
            "page_token is not a token this server issued",
            code="invalid_page_token",
            field="page_token",
        )
    return int(after)


def next_token(end: int, total: int) -> str | None:
    return encode_page_token(str(end)) if end < total else None
