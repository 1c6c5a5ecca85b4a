"""Shapes every resource shares: pages and problems."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class RequestBody(BaseModel):
    # Numbers become strings where a string is expected (`--set tags.version=2`).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Page(ResponseBody, Generic[T]):
    """One page of a list; pass ``next_page_token`` back as ``page_token`` for the next."""

    items: list[T]
    next_page_token: str | None = None


class Problem(ResponseBody):
    """An RFC 9457 problem document with Shipyard's stable ``code`` and the ``field`` at fault."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None
    request_id: str | None = None
