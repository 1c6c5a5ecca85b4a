"""User and token bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, SecretStr

from shipyard.domain.names import USER_NAME
from shipyard.schemas.common import RequestBody, ResponseBody


class UserCreate(RequestBody):
    name: str = Field(pattern=USER_NAME.pattern)
    display_name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    is_admin: bool = False
    password: SecretStr | None = Field(default=None, description="For Studio login; optional.")


class UserUpdate(RequestBody):
    display_name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    disabled: bool | None = None
    password: SecretStr | None = Field(default=None, description="Set a new Studio password.")


class UserRead(ResponseBody):
    id: str
    name: str
    display_name: str | None = None
    email: str | None = None
    is_admin: bool
    disabled: bool
    has_password: bool = False
    created_at: datetime


class TokenCreate(RequestBody):
    name: str = Field(min_length=1, max_length=128)
    expires_in_days: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, description="Admins may create a token for a user.")


class TokenRead(ResponseBody):
    id: str
    name: str
    user: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class TokenCreated(TokenRead):
    """The only response that carries the token itself: it is not stored and not shown again."""

    token: str


class PasswordChange(RequestBody):
    """Change your own password; ``current_password`` is needed once you have one."""

    current_password: SecretStr | None = None
    new_password: SecretStr


class LoginRequest(RequestBody):
    name: str = Field(min_length=1, max_length=63)
    password: SecretStr = Field(min_length=1, max_length=1024)


class SessionRead(ResponseBody):
    """A Studio session. Send ``csrf_token`` back as ``X-CSRF-Token`` on every change."""

    user: UserRead
    csrf_token: str
    expires_at: datetime
