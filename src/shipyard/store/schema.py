"""All row modules, imported so ``Base.metadata`` knows every table (migrations need it)."""

from shipyard.store import audit, groups, roles, sessions, tokens, users, workspaces
from shipyard.store.base import Base

metadata = Base.metadata

__all__ = ["audit", "groups", "metadata", "roles", "sessions", "tokens", "users", "workspaces"]
