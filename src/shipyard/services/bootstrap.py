"""What a server does before it serves: migrate, and make sure an admin can get in.

On the first start an ``admin`` user is created. Its token is ``settings.admin_token`` when
set; otherwise one is generated, returned here to be printed once, and written to
``<data_dir>/admin-token`` with mode 0600. There is never a default password or token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from shipyard.services.roles import sync_builtin_roles
from shipyard.services.tokens import add_token, hash_token, new_token
from shipyard.services.workspaces import SHARED_ENVIRONMENT_REGISTRY
from shipyard.settings import Settings
from shipyard.store import authz_state, migrate
from shipyard.store import tokens as token_store
from shipyard.store import users as user_store
from shipyard.store import workspaces as workspace_store
from shipyard.store.database import Database
from shipyard.store.users import UserRow
from shipyard.store.workspaces import EnvironmentRegistryRow

ADMIN_NAME = "admin"


class SchemaOutOfDateError(RuntimeError):
    pass


@dataclass(frozen=True)
class BootstrapResult:
    generated_token: str | None
    token_file: Path | None


def prepare(settings: Settings, db: Database) -> BootstrapResult:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.auto_upgrade:
        migrate.upgrade(db.engine)
    elif migrate.current_revision(db.engine) != migrate.head_revision(db.engine):
        raise SchemaOutOfDateError(
            "the database schema is not up to date: run `shipyard db upgrade` (or start the "
            "server without --no-upgrade)"
        )
    with db.write() as session:
        authz_state.ensure(session)
        sync_builtin_roles(session)
        if workspace_store.get_environment_registry(session, SHARED_ENVIRONMENT_REGISTRY) is None:
            session.add(EnvironmentRegistryRow(name=SHARED_ENVIRONMENT_REGISTRY, shared=True))
        admin = user_store.find_admin(session)
        if admin is None:
            admin = UserRow(name=ADMIN_NAME, display_name="Administrator", is_admin=True)
            session.add(admin)
            session.flush()
        elif settings.admin_token is None:
            return BootstrapResult(generated_token=None, token_file=None)
        ttl = timedelta(days=settings.admin_token_ttl_days)
        if settings.admin_token is not None:
            raw = settings.admin_token.get_secret_value()
            if token_store.get_token_by_hash(session, hash_token(raw)) is None:
                add_token(session, admin, "bootstrap", raw, ttl)
            return BootstrapResult(generated_token=None, token_file=None)
        raw = new_token()
        add_token(session, admin, "bootstrap", raw, ttl)
        # Written before the commit: if the file cannot be written, no unseen token exists.
        token_file = settings.data_dir / "admin-token"
        _write_private(token_file, raw + "\n")
    return BootstrapResult(generated_token=raw, token_file=token_file)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # the file may have existed with wider permissions
