"""All row modules, imported so ``Base.metadata`` knows every table (migrations need it)."""

from shipyard.store import (
    artifact_uploads,
    audit,
    authz_state,
    computes,
    data,
    datastores,
    groups,
    jobs,
    logged_models,
    model_assets,
    models,
    roles,
    run_inputs,
    secrets,
    sessions,
    tokens,
    tracking,
    uploads,
    users,
    workspaces,
)
from shipyard.store.base import Base

metadata = Base.metadata

__all__ = [
    "artifact_uploads",
    "audit",
    "authz_state",
    "computes",
    "data",
    "datastores",
    "groups",
    "jobs",
    "logged_models",
    "metadata",
    "model_assets",
    "models",
    "roles",
    "run_inputs",
    "secrets",
    "sessions",
    "tokens",
    "tracking",
    "uploads",
    "users",
    "workspaces",
]
