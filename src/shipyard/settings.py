"""Server settings: built once at start, then passed in to every component that needs one.

Sources, highest priority first: explicit values (the ``shipyard server`` flags), environment
variables ``SHIPYARD_<NAME>``, a config file (YAML, JSON or TOML; ``--config`` or
``SHIPYARD_CONFIG``), then the defaults below. No module reads the environment after this.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path("~/.shipyard").expanduser()


class Settings(BaseSettings):
    # validate_by_name: Settings(data_dir=...) works while the aliases below name only the
    # environment variables (an alias without the prefix would read a bare DATA_DIR).
    model_config = SettingsConfigDict(
        env_prefix="SHIPYARD_", extra="forbid", frozen=True, validate_by_name=True
    )

    config_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("SHIPYARD_CONFIG", "SHIPYARD_CONFIG_FILE"),
        description="A YAML, JSON or TOML file with any of these settings.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        validation_alias=AliasChoices("SHIPYARD_DATA_DIR", "SHIPYARD_HOME"),
        description="Folder for the embedded database, artifacts and the admin token.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the server binds.")
    port: int = Field(default=8765, ge=0, le=65535, description="TCP port the server binds.")
    public_url: str | None = Field(
        default=None,
        description="The server's address as clients see it (behind a proxy); default: the "
        "address each request came to.",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store; default: SQLite in the data folder.",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Where workspace storage lives by default; default: <data_dir>/artifacts.",
    )
    storage_roots: list[str] = Field(
        default_factory=list,
        description="Extra folders a workspace may bring as its own storage.",
    )
    datastore_roots: list[str] = Field(
        default_factory=list,
        description="Folders on this host that local datastores may point into.",
    )
    datastore_server_credentials: bool = Field(
        default=False,
        description="Let S3 datastores without credentials sign in with the server's own "
        "(instance role, environment, profile).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint for an s3:// artifact_root (default: AWS).",
    )
    s3_region: str | None = Field(default=None, description="Region of that S3 storage.")
    s3_access_key_id: str | None = Field(
        default=None,
        description="Access key for that S3 storage (unset: the usual AWS credential chain).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key for that S3 storage; never logged or shown."
    )
    new_user_roles: list[str] = Field(
        default_factory=lambda: ["Workspace Creator"],
        description="Roles every new user gets at global scope ([] to turn off self-serve).",
    )
    auto_upgrade: bool = Field(
        default=True, description="Apply pending database migrations when the server starts."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="The first admin's token; generated when unset."
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="The key that encrypts the key vault's secrets (base64, 32 bytes); "
        "when unset, generated once into <data_dir>/master.key (mode 0600).",
    )
    token_default_ttl_days: int = Field(
        default=90, ge=1, description="Lifetime of a new token when the request gives none."
    )
    token_max_ttl_days: int = Field(
        default=365, ge=1, description="Longest lifetime a token may be created with."
    )
    admin_token_ttl_days: int = Field(
        default=365, ge=1, description="Lifetime of the bootstrap admin token."
    )
    password_min_length: int = Field(
        default=12, ge=8, description="Shortest Studio password accepted."
    )
    session_ttl_hours: float = Field(default=12, gt=0, description="How long a Studio login lasts.")
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins in a row before the account locks."
    )
    login_lockout_minutes: float = Field(
        default=15, gt=0, description="How long a locked account stays locked."
    )
    login_rate_per_minute: int = Field(
        default=20, ge=1, description="Login attempts one client address may make per minute."
    )
    workspace_retention_days: float = Field(
        default=14, ge=0, description="How long a soft-deleted workspace can be recovered."
    )
    purge_interval_seconds: float = Field(
        default=3600, gt=0, description="How often expired soft-deleted workspaces are purged."
    )
    upload_abandon_after_hours: float = Field(
        default=24,
        gt=0,
        description="Uploads of local files nobody has begun for this long are removed when "
        "never committed, or committed and used by no data or model version.",
    )
    upload_gc_interval_seconds: float = Field(
        default=3600, gt=0, description="How often the server removes such uploads."
    )
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_artifact_bytes: int = Field(
        default=5 * 1024**3,
        ge=1024,
        description="Largest single artifact file accepted by an upload (413 above).",
    )
    default_page_size: int = Field(default=100, ge=1, description="List page size by default.")
    max_page_size: int = Field(default=1000, ge=1, description="Largest list page a client gets.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text or as JSON objects."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    sqlite_busy_timeout_seconds: float = Field(
        default=60, gt=0, description="How long a SQLite writer waits for the lock."
    )
    graceful_shutdown_seconds: float = Field(
        default=30, ge=0, description="How long in-flight requests get to finish on SIGTERM."
    )
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="How long an idle client connection is kept open for its next request.",
    )

    jobs_enabled: bool = Field(
        default=True,
        description="Run the job runner in this server (queue, local compute); off, jobs "
        "queue until a server with it on picks them up.",
    )
    serving_enabled: bool | None = Field(
        default=None,
        description="Run the instances of online deployments in this server (and route "
        "scoring requests to them); default: as jobs_enabled.",
    )
    endpoint_metrics_interval_seconds: float = Field(
        default=60,
        gt=0,
        description="How often the online deployments' per-minute figures (requests, errors, "
        "latency, restarts) are written to the store.",
    )
    endpoint_metrics_retention_days: float = Field(
        default=30,
        gt=0,
        description="How long those per-minute figures are kept (removed by the purge loop).",
    )
    data_collector_flush_seconds: float = Field(
        default=5,
        gt=0,
        description="How often the scoring requests and responses sampled by online "
        "deployments' data_collector are written to their datastore.",
    )
    data_collector_buffer_bytes: int = Field(
        default=64 * 1024**2,
        ge=0,
        description="Most bytes of sampled requests and responses held in memory between "
        "writes; a sample past it is dropped and counted.",
    )
    local_compute_cpus: float | None = Field(
        default=None, gt=0, description="CPUs the local compute hands to jobs; default: all."
    )
    local_compute_memory_mb: int | None = Field(
        default=None, ge=0, description="Memory (MB) for jobs on local compute; default: all."
    )
    local_compute_gpus: int = Field(default=0, ge=0, description="GPUs of the local compute.")
    local_compute_cost_per_core_hour: float = Field(
        default=0.0, ge=0, description="Price of a core-hour on local compute (cost reports)."
    )
    local_compute_uids: str | None = Field(
        default=None,
        pattern=r"^\s*\d+\s*(-\s*\d+\s*)?$",
        description="Run each local job as its own user id from this range (e.g. "
        "61000-61099; no accounts needed): a job then cannot read the data folder, other "
        "jobs' files or processes. Needs a server running as root; off, jobs run as the "
        "server's user.",
    )
    container_engine: str = Field(
        default="auto",
        min_length=1,
        description="The Docker-compatible command that runs image environments: auto "
        "(docker, else podman, whichever is installed), none, or a command line such as "
        "'podman --runtime runc'.",
    )
    job_kill_grace_seconds: float = Field(
        default=10, ge=0, description="Time between SIGTERM and SIGKILL when a job is stopped."
    )
    job_metrics_interval_seconds: float = Field(
        default=15, gt=0, description="How often a running job's CPU and memory are recorded."
    )

    environment_allow_pip_options: bool = Field(
        default=False,
        description="Let environments' requirement lines hold pip options (-r, --index-url), "
        "URLs and local paths; off, only package names and versions pass.",
    )
    environment_cache_max_bytes: int = Field(
        default=20 * 1024**3,
        ge=0,
        description="Size of built environments kept; past it, the least recently used go.",
    )
    environment_cache_dir: Path | None = Field(
        default=None,
        description="Where built environments are kept (shareable by several servers and "
        "data folders); default: <data_dir>/environments.",
    )

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'shipyard.db'}"

    @property
    def server_url(self) -> str:
        """How jobs on this host reach the server."""
        if self.public_url:
            return self.public_url.rstrip("/")
        # Bound to every interface: jobs on this host reach it on loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def artifact_root_uri(self) -> str:
        return self.artifact_root or str(self.data_dir / "artifacts")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the file named by ``config_file`` (from a flag or the environment)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # whole-file loading happens in __call__

    def __call__(self) -> dict[str, Any]:
        # Earlier sources key their values by the name they were given under.
        state = self.current_state
        path = next(
            (
                state[k]
                for k in ("config_file", "SHIPYARD_CONFIG", "SHIPYARD_CONFIG_FILE")
                if state.get(k)
            ),
            None,
        )
        if not path:
            return {}
        return read_config_file(Path(path))


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from exc
    if path.suffix == ".toml":
        data: Any = tomllib.loads(text)
    else:
        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of setting names to values")
    return data
