"""The first start creates an admin with a token shown once; there is no default credential."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shipyard.services.authz import RoleBasedAuthorizer
from shipyard.services.bootstrap import SchemaOutOfDateError, prepare
from shipyard.services.tokens import TokenService
from shipyard.settings import Settings
from shipyard.store.database import Database


def _tokens(db: Database) -> TokenService:
    return TokenService(db, RoleBasedAuthorizer(db), default_ttl_days=90, max_ttl_days=365)


def test_first_start_generates_an_admin_token_once(tmp_path: Path, database_url: str) -> None:
    settings = Settings(data_dir=tmp_path, db_url=database_url)
    db = Database(database_url)
    try:
        first = prepare(settings, db)
        assert first.generated_token
        assert first.generated_token.startswith("shp_")
        assert first.token_file == tmp_path / "admin-token"
        assert first.token_file.read_text().strip() == first.generated_token
        assert stat.S_IMODE(first.token_file.stat().st_mode) == 0o600
        principal = _tokens(db).authenticate(first.generated_token)
        assert (principal.name, principal.is_admin) == ("admin", True)

        second = prepare(settings, db)
        assert second.generated_token is None
        assert _tokens(db).authenticate(first.generated_token).is_admin
    finally:
        db.dispose()


def test_admin_token_from_settings_is_used_and_nothing_is_written(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, db_url=database_url, admin_token="shp_from-env-abc")
    db = Database(database_url)
    try:
        result = prepare(settings, db)
        assert result.generated_token is None
        assert not (tmp_path / "admin-token").exists()
        assert _tokens(db).authenticate("shp_from-env-abc").is_admin
        # A later start with a new SHIPYARD_ADMIN_TOKEN adds it; the old one keeps working.
        rotated = Settings(data_dir=tmp_path, db_url=database_url, admin_token="shp_rotated-xyz")
        prepare(rotated, db)
        assert _tokens(db).authenticate("shp_rotated-xyz").is_admin
        assert _tokens(db).authenticate("shp_from-env-abc").is_admin
    finally:
        db.dispose()


def test_no_upgrade_refuses_an_out_of_date_schema(tmp_path: Path, database_url: str) -> None:
    settings = Settings(data_dir=tmp_path, db_url=database_url, auto_upgrade=False)
    db = Database(database_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="shipyard db upgrade"):
            prepare(settings, db)
    finally:
        db.dispose()
