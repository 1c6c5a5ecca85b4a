"""Group and service principal bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shipyard.domain.names import USER_NAME
from shipyard.schemas.common import RequestBody, ResponseBody

Relation = Literal["member", "owner"]


class GroupCreate(RequestBody):
    name: str = Field(pattern=USER_NAME.pattern)
    description: str | None = Field(default=None, max_length=2048)


class GroupMemberAdd(RequestBody):
    """A user or service principal by name; ``owner`` lets them manage the group."""

    name: str = Field(min_length=1, max_length=63)
    relation: Relation = "member"


class GroupMember(ResponseBody):
    name: str
    kind: str


class GroupRead(ResponseBody):
    id: str
    name: str
    description: str | None = None
    created_at: datetime
    members: list[GroupMember] = Field(default_factory=list)
    owners: list[GroupMember] = Field(default_factory=list)


class ServicePrincipalCreate(RequestBody):
    name: str = Field(pattern=USER_NAME.pattern)
    description: str | None = Field(default=None, max_length=256)


class ServicePrincipalRead(ResponseBody):
    id: str
    name: str
    description: str | None = None
    disabled: bool
    created_at: datetime
