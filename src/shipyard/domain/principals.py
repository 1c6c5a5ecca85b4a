"""Who is calling: the identity a request was authenticated as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    is_admin: bool
    token_id: str | None = None
