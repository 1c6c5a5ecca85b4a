"""Settings: explicit values beat the environment, which beats the config file; all documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from shipyard.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_precedence_explicit_then_env_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "shipyard.yaml"
    config.write_text("port: 7001\nlog_format: json\nworkspace_retention_days: 3\n")
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))
    monkeypatch.setenv("SHIPYARD_PORT", "7002")
    settings = Settings()
    assert settings.port == 7002
    assert settings.log_format == "json"
    assert settings.workspace_retention_days == 3
    assert Settings(port=7003).port == 7003


def test_toml_config_file_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "shipyard.toml"
    config.write_text('host = "127.0.0.2"\nstorage_roots = ["/srv/data"]\n')
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    settings = Settings(config_file=config)
    assert settings.host == "127.0.0.2"
    assert settings.storage_roots == ["/srv/data"]
    assert settings.data_dir == tmp_path / "home"
    assert settings.database_url == f"sqlite:///{tmp_path / 'home' / 'shipyard.db'}"
    assert settings.artifact_root_uri == str(tmp_path / "home" / "artifacts")


def test_bad_values_and_unknown_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="port"):
        Settings(port=70000)
    config = tmp_path / "bad.yaml"
    config.write_text("prot: 1\n")
    with pytest.raises(ValidationError, match="prot"):
        Settings(config_file=config)


def test_admin_token_is_never_shown_in_a_repr() -> None:
    settings = Settings(admin_token="shp_do-not-print")
    assert "shp_do-not-print" not in repr(settings)
    assert "shp_do-not-print" not in str(settings.model_dump())


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.MULTILINE))
    assert set(Settings.model_fields) - documented == set()
    assert documented - set(Settings.model_fields) == set(), "docs list settings that are gone"


def test_only_prefixed_environment_variables_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "not-ours"))
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("CONFIG_FILE", str(tmp_path / "missing.yaml"))
    settings = Settings()
    assert settings.data_dir != tmp_path / "not-ours"
    assert settings.port == 8765


def test_upload_cleanup_settings_must_be_positive() -> None:
    settings = Settings(upload_abandon_after_hours=0.5, upload_gc_interval_seconds=60)
    assert (settings.upload_abandon_after_hours, settings.upload_gc_interval_seconds) == (0.5, 60)
    assert Settings().upload_abandon_after_hours == 24
    for name in ("upload_abandon_after_hours", "upload_gc_interval_seconds"):
        for bad in (0, -1):
            with pytest.raises(ValidationError, match=name):
                Settings(**{name: bad})


def test_environment_settings_default_to_safe_values() -> None:
    settings = Settings()
    assert settings.environment_allow_pip_options is False
    assert settings.environment_cache_max_bytes == 20 * 1024**3
    assert Settings(environment_cache_max_bytes=0).environment_cache_max_bytes == 0
    with pytest.raises(ValidationError, match="environment_cache_max_bytes"):
        Settings(environment_cache_max_bytes=-1)
