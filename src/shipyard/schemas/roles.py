"""Role and role assignment bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from shipyard.schemas.common import RequestBody, ResponseBody

ScopeKindName = Literal["global", "workspace", "registry"]
ACTION_PATTERN = r"^[A-Za-z0-9*._/-]{1,200}$"


def _all_scopes() -> list[ScopeKindName]:
    return ["global", "workspace", "registry"]


class RoleCreate(RequestBody):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    description: str | None = Field(default=None, max_length=2048)
    actions: list[str] = Field(min_length=1, max_length=200)
    not_actions: list[str] = Field(default_factory=list, max_length=200)
    assignable_scopes: list[ScopeKindName] = Field(default_factory=_all_scopes, min_length=1)


class RoleRead(ResponseBody):
    id: str
    name: str
    description: str | None = None
    actions: list[str]
    not_actions: list[str] = Field(default_factory=list)
    assignable_scopes: list[str]
    builtin: bool
    created_at: datetime


class RoleAssignmentCreate(RequestBody):
    """Exactly one of ``user``, ``group`` or ``service_principal``."""

    role: str = Field(min_length=1, max_length=128)
    user: str | None = None
    group: str | None = None
    service_principal: str | None = None

    @model_validator(mode="after")
    def _one_principal(self) -> RoleAssignmentCreate:
        given = [k for k in ("user", "group", "service_principal") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of user, group or service_principal")
        return self

    @property
    def principal(self) -> tuple[str, str]:
        for kind in ("user", "group", "service_principal"):
            value = getattr(self, kind)
            if value:
                return kind, value
        raise ValueError("no principal")


class RoleAssignmentRead(ResponseBody):
    id: str
    role: str
    principal_type: str
    principal_name: str
    scope: str
    workspace: str | None = None
    registry: str | None = None
    created_at: datetime
