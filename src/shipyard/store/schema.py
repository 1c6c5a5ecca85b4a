"""All row modules, imported so ``Base.metadata`` knows every table (migrations need it)."""

from shipyard.store import tokens, users, workspaces
from shipyard.store.base import Base

metadata = Base.metadata

__all__ = ["metadata", "tokens", "users", "workspaces"]
