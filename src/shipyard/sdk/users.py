"""``client.users`` and ``client.tokens``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
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
        password: str | None = None,
    ) -> User:
        """``password`` lets the user sign in to the Studio; without one they use tokens."""
        body = {"name": name, "display_name": display_name, "email": email, "is_admin": is_admin}
        if password is not None:
            body["password"] = password
        return self._http.send_model("POST", "/api/v1/users", User, body)

    def change_my_password(self, new_password: str, *, current_password: str | None = None) -> User:
        """Change your own Studio password (give the current one once you have one)."""
        body = {"new_password": new_password, "current_password": current_password}
        return self._http.send_model("POST", "/api/v1/users/me/password", User, body)

    def set_password(self, name: str, password: str) -> User:
        """Set a user's Studio password (this also unlocks a locked account)."""
        return self._set(name, {"password": password})

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

        created = client.tokens.create(name="ci", expires_in=timedelta(days=30))
        print(created.token)   # shown once
        client.tokens.revoke(created.id)
        client.tokens.create(name="nightly", user="ci-bot", expires_in=7)  # a service principal's
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(
        self,
        name: str,
        *,
        user: str | None = None,
        expires_in: timedelta | int | None = None,
        expires_in_days: int | None = None,
    ) -> TokenCreated:
        """A token for you, or for ``user`` (a user or a service principal; admins and Owners
        at global scope). ``expires_in``: a ``timedelta`` of whole days, or a number of days
        (``expires_in_days`` is the same as a number); default: the server's (90 days)."""
        if expires_in is not None and expires_in_days is not None:
            raise InvalidInputError(
                "give expires_in or expires_in_days, not both",
                code="conflicting_expiry",
                field="expires_in",
            )
        days = _days(expires_in) if expires_in is not None else expires_in_days
        body = {"name": name, "expires_in_days": days, "user": user}
        return self._http.send_model("POST", "/api/v1/tokens", TokenCreated, body)

    def list(self, *, user: str | None = None) -> Iterator[Token]:
        return self._http.iterate("/api/v1/tokens", Token, {"user": user})

    def revoke(self, token_id: str) -> Token:
        return self._http.send_model("DELETE", f"/api/v1/tokens/{quote(token_id, safe='')}", Token)


def _days(expires_in: timedelta | int) -> int:
    """Token lifetimes are whole days; a timedelta that is not is refused, never rounded."""
    if isinstance(expires_in, timedelta):
        whole, rest = divmod(expires_in, timedelta(days=1))
        if rest:
            raise InvalidInputError(
                f"expires_in must be a whole number of days (got {expires_in})",
                code="invalid_expiry",
                field="expires_in",
            )
        return whole
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise InvalidInputError(
            f"expires_in must be a timedelta or a number of days (got {expires_in!r})",
            code="invalid_expiry",
            field="expires_in",
        )
    return expires_in
