"""Passwords for Studio login: argon2id hashes, a minimum length, no defaults.

argon2-cffi is the reference binding of the Password Hashing Competition winner; its
defaults follow RFC 9106, so no parameters of our own are needed.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shipyard.domain.errors import InvalidInputError


class Passwords:
    def __init__(self, *, min_length: int) -> None:
        self.min_length = min_length
        self._hasher = PasswordHasher()
        # Checked against when the user does not exist, so a wrong name costs as much time as
        # a wrong password and login timing does not reveal which names exist.
        self._dummy = self._hasher.hash("not a password of anyone's")

    def hash(self, password: str, *, field: str = "password") -> str:
        if len(password) < self.min_length:
            raise InvalidInputError(
                f"a password needs at least {self.min_length} characters",
                code="password_too_short",
                field=field,
            )
        return self._hasher.hash(password)

    def verify(self, hashed: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(hashed or self._dummy, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False
