"""``client.users`` and ``client.tokens``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from shipyard.schemas.users import TokenCreated, TokenRead, UserRead
from shipyard.sdk.http import HttpSession

User = UserRead
Token = TokenRead


class UserOperations:
    """Users (admins only, except ``me``).

    Example::

        client.users.create(name="alice", email="alice@example.com")
        client.users.disable("alice")
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def me(self) -> User:
        return self._http.get_model("/api/v1/users/me", User)

    def create(
        self,
        name: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        is_admin: bool = False,
    ) -> User:
        body = {"name": name, "display_name": display_name, "email": email, "is_admin": is_admin}
        return self._http.send_model("POST", "/api/v1/users", User, body)

    def get(self, name: str) -> User:
        return self._http.get_model(f"/api/v1/users/{quote(name, safe='')}", User)

    def list(self) -> Iterator[User]:
        return self._http.iterate("/api/v1/users", User)

    def disable(self, name: str) -> User:
        return self._set(name, {"disabled": True})

    def enable(self, name: str) -> User:
        return self._set(name, {"disabled": False})

    def _set(self, name: str, body: dict[str, Any]) -> User:
        return self._http.send_model("PATCH", f"/api/v1/users/{quote(name, safe='')}", User, body)


class TokenOperations:
    """Personal access tokens. The token itself is in ``create``'s result and nowhere else.

    Example::

        created = client.tokens.create(name="ci", expires_in_days=30)
        print(created.token)   # shown once
        client.tokens.revoke(created.id)
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(
        self, name: str, *, expires_in_days: int | None = None, user: str | None = None
    ) -> TokenCreated:
        body = {"name": name, "expires_in_days": expires_in_days, "user": user}
        return self._http.send_model("POST", "/api/v1/tokens", TokenCreated, body)

    def list(self, *, user: str | None = None) -> Iterator[Token]:
        return self._http.iterate("/api/v1/tokens", Token, {"user": user})

    def revoke(self, token_id: str) -> Token:
        return self._http.send_model("DELETE", f"/api/v1/tokens/{quote(token_id, safe='')}", Token)
