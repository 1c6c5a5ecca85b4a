"""Name rules for resources, checked the same way by the server, the SDK and the CLI."""

from __future__ import annotations

import re

from shipyard.domain.errors import InvalidInputError

WORKSPACE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# User names appear in URLs and in role assignments; keep them as tame as workspace names,
# with dots and underscores allowed because they are common in logins.
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


def check_name(value: str, pattern: re.Pattern[str], *, field: str = "name") -> str:
    if not pattern.fullmatch(value):
        raise InvalidInputError(
            f"{value!r} is not a valid name: it must match {pattern.pattern}",
            code="invalid_name",
            field=field,
        )
    return value
