"""Where the CLI keeps the server URL and token between runs (``shipyard login``).

The file is ``$XDG_CONFIG_HOME/shipyard/config.yaml`` (default ``~/.config/shipyard/``),
written with mode 0600 because it holds a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.domain.errors import InvalidInputError

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Profile:
    url: str
    token: str | None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "shipyard" / "config.yaml"


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(
            f"cannot read the Shipyard config file {_where(path, exc)}; fix or remove it",
            code="invalid_config",
        ) from exc
    return data if isinstance(data, dict) else {}


def _where(path: Path, exc: Exception) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"{path}:{exc.problem_mark.line + 1}: {exc.problem}"
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror}"
    return f"{path}: {exc}"


def _profiles(data: dict[str, Any]) -> dict[str, Any]:
    profiles = data.get("profiles")
    return profiles if isinstance(profiles, dict) else {}


def load_profile(name: str | None = None, *, path: Path | None = None) -> Profile | None:
    path = path or config_path()
    data = _read(path)
    entry = _profiles(data).get(name or data.get("current") or DEFAULT_PROFILE)
    if not isinstance(entry, dict) or not entry.get("url"):
        return None
    return Profile(url=str(entry["url"]), token=entry.get("token"))


def save_profile(
    profile: Profile, name: str = DEFAULT_PROFILE, *, path: Path | None = None
) -> Path:
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = _read(path)
    data["profiles"] = {**_profiles(data), name: {"url": profile.url, "token": profile.token}}
    data["current"] = name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=True)
    os.chmod(path, 0o600)  # an older file may have been created with wider permissions
    return path
