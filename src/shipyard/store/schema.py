"""All row modules, imported so ``Base.metadata`` knows every table (migrations need it)."""

from shipyard.store import (
    audit,
    authz_state,
    groups,
    roles,
    sessions,
    tokens,
    tracking,
    users,
    workspaces,
)
from shipyard.store.base import Base

metadata = Base.metadata

__all__ = [
    "audit",
    "authz_state",
    "groups",
    "metadata",
    "roles",
    "sessions",
    "tokens",
    "tracking",
    "users",
    "workspaces",
]
