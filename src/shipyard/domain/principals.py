"""Who is calling: the identity a request was authenticated as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    is_admin: bool
    token_id: str | None = None
    # The authorization counter read with the credential (see store/authz_state.py): what the
    # authorizer may cache is valid while it stays the same.
    authz_version: int | None = None
    # A job's token: acts for its submitter in this one workspace (by id) and nowhere else.
    workspace_id: str | None = None
