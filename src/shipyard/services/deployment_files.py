"""Turning an online deployment's stored spec into what its instances run (``DeploymentSpec``).

The spec pinned everything when the deployment was created (``services.online_deployments``):
the model's files' URI, the environment, the code snapshot's digest, secret references.
Preparing builds the environment through the same builder jobs use, copies the model's files
into a read-only folder and the code snapshot into a folder of its own (both on this host:
the instances read them there, the server never loads them), and reveals the secrets the
variables reference (masked in the instance logs). It runs on a worker thread: a first
environment build takes minutes.

With job users (``local_compute_uids``) the instances run as other users: the environment is
built for all users (the builder's platform says so, for jobs and deployments alike), the
model and code are readable by every user but writable by none, and the folders above them
may be entered, not listed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.domain.asset_uris import DatastorePath, parse_asset_path
from shipyard.domain.content import UPLOADS_FOLDER
from shipyard.domain.environments import EnvironmentSpec, curated
from shipyard.domain.errors import ShipyardError
from shipyard.domain.model_requirements import pip_requirements
from shipyard.services import job_files
from shipyard.services.datastore_uris import DatastoreResolver, Location
from shipyard.services.environments import Environments
from shipyard.services.job_environment import SECRET_REFERENCE
from shipyard.services.secrets import SecretService
from shipyard.serving.spec import DeploymentSpec, Probe
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow

#: What an ``mlflow_model`` deployment without an environment runs in when the model lists
#: no usable requirements: MLflow and the libraries of the models the workspace's own tools
#: make (scikit-learn, pandas).
MLFLOW_DEFAULT_ENVIRONMENT = "shipyard-sklearn"
#: A model's requirements.txt bigger than this is not MLflow's: the default is used.
MAX_REQUIREMENTS_BYTES = 64 * 1024


@dataclass(frozen=True)
class DeploymentRef:
    """One deployment row as the runtime reads it."""

    id: str
    workspace_id: str
    workspace: str
    endpoint: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    code_digest: str | None


class PreparationError(Exception):
    """The deployment cannot run as it is: the text says why (shown as its error)."""


class DeploymentPreparer:
    def __init__(
        self,
        db: Database,
        *,
        environments: Environments,
        resolver: DatastoreResolver,
        secrets: SecretService,
        max_body_bytes: int,
    ) -> None:
        self.db = db
        self.environments = environments
        self.resolver = resolver
        self.secrets = secrets
        self.max_body_bytes = max_body_bytes

    def prepare(
        self, ref: DeploymentRef, folder: Path, held: contextlib.ExitStack
    ) -> DeploymentSpec:
        """Materialise ``ref`` in ``folder`` (new, empty) and say how to run it; raises
        PreparationError with a message for the deployment's error. The environment is held
        (not evicted) until ``held`` closes."""
        try:
            return self._prepare(ref, folder, held)
        except ShipyardError as exc:
            raise PreparationError(exc.detail) from exc
        except OSError as exc:
            raise PreparationError(f"preparing the deployment's files failed: {exc}") from exc

    def _prepare(
        self, ref: DeploymentRef, folder: Path, held: contextlib.ExitStack
    ) -> DeploymentSpec:
        spec = ref.spec
        notes: list[str] = []
        model_dir = self._model(ref, folder / "model")
        pinned = spec.get("environment")
        if pinned is not None:
            built = self.environments.prepare(dict(pinned), notes.append)
            held.enter_context(self.environments.hold(dict(pinned)))
        else:
            wanted = model_environment(model_dir)
            builder = self.environments.builder
            built = builder.ensure(wanted, notes.append)
            held.enter_context(builder.hold(builder.spec_hash(wanted)))
        if built.image is not None:
            raise PreparationError(
                "image environments cannot run online deployments here yet; use a conda_file "
                "or pip environment"
            )
        code = spec.get("code_configuration")
        code_dir: Path | None = None
        if code is not None and ref.code_digest:
            code_dir = folder / "code"
            location = self._default_location(ref, f"{UPLOADS_FOLDER}/{ref.code_digest}")
            job_files.fetch(location, code_dir)
            make_read_only(code_dir)
        env, masked = self._variables(ref)
        request = spec.get("request_settings") or {}
        return DeploymentSpec(
            name=ref.id,
            python=built.python,
            model_dir=model_dir,
            code_dir=code_dir,
            scoring_script=code["scoring_script"] if code else None,
            mlflow_model=code is None,
            instance_count=int(spec.get("instance_count") or 1),
            request_timeout_ms=int(request.get("request_timeout_ms") or 5000),
            max_concurrent_requests=int(request.get("max_concurrent_requests_per_instance") or 1),
            max_body_bytes=self.max_body_bytes,
            environment_variables=env,
            masked=tuple(masked),
            liveness_probe=_probe(spec.get("liveness_probe")),
            readiness_probe=_probe(spec.get("readiness_probe")),
        )

    def _model(self, ref: DeploymentRef, dest: Path) -> Path:
        model = ref.spec.get("model")
        if model is None:
            raise PreparationError("the deployment has no model")
        uri = str(model["uri"])
        parsed = parse_asset_path(uri, field="model")
        if not isinstance(parsed, DatastorePath):
            raise PreparationError(
                f"the model's files at {uri[:200]} cannot be fetched by the runtime: register "
                "the model (its files then live in a datastore)"
            )
        with self.db.read() as session:
            ws = session.get(WorkspaceRow, ref.workspace_id)
            if ws is None:
                raise PreparationError("the deployment's workspace no longer exists")
            location = self.resolver.resolve(
                session, ws, parsed.datastore, parsed.path, field="model"
            )
        fetched = job_files.fetch(location, dest)
        make_read_only(dest)
        # A single-file model: AZUREML_MODEL_DIR is its folder (Azure's layout).
        return fetched.parent if fetched.is_file() else fetched

    def _default_location(self, ref: DeploymentRef, path: str) -> Location:
        with self.db.read() as session:
            ws = session.get(WorkspaceRow, ref.workspace_id)
            if ws is None:
                raise PreparationError("the deployment's workspace no longer exists")
            return self.resolver.default(ws, path)

    def _variables(self, ref: DeploymentRef) -> tuple[dict[str, str], list[str]]:
        masked: list[str] = []

        def secret(found: Any) -> str:
            value = self.secrets.reveal(ref.workspace, found.group(1)).value
            masked.append(value)
            return value

        variables = ref.spec.get("environment_variables") or {}
        env = {key: SECRET_REFERENCE.sub(secret, str(value)) for key, value in variables.items()}
        return env, masked


def model_environment(model_dir: Path) -> EnvironmentSpec:
    """What an MLflow model with no environment of its own runs in: the packages its
    ``requirements.txt`` pins (see domain/model_requirements.py), else the curated default."""
    for folder in (model_dir, *_only_subfolder(model_dir)):
        listed = folder / "requirements.txt"
        if (folder / "MLmodel").is_file() and listed.is_file():
            if listed.stat().st_size > MAX_REQUIREMENTS_BYTES:
                break
            pip = pip_requirements(listed.read_text(encoding="utf-8", errors="replace"))
            if pip is not None:
                return EnvironmentSpec(pip=pip)
            break
    default = curated(MLFLOW_DEFAULT_ENVIRONMENT)
    assert default is not None
    return default.spec


def _only_subfolder(path: Path) -> list[Path]:
    """A model registered from a folder that holds the MLflow model folder: that one."""
    folders = [entry for entry in path.iterdir() if entry.is_dir()] if path.is_dir() else []
    return folders if len(folders) == 1 else []


def new_files_folder(root: Path, generation: int) -> Path:
    """A fresh folder for one preparation of ``generation``: a retried or restarted
    preparation never mixes files with an earlier one that instances may still read."""
    root.mkdir(parents=True, exist_ok=True)
    # Instances running as job users pass through to their model and code, and list
    # nothing: the folder's random name is known to the deployment's instances alone.
    root.chmod(0o711)
    folder = Path(tempfile.mkdtemp(prefix=f"g{generation}-", dir=root))
    folder.chmod(0o711)
    return folder


def make_read_only(path: Path) -> None:
    """The instances may read the model's (and the code's) files, not change them (nor add
    any); readable by every user, for instances that run as job users."""
    if not path.exists():
        return
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files:
            file = Path(top) / name
            if not file.is_symlink():
                # A script the code runs keeps being runnable.
                runnable = file.stat().st_mode & 0o111
                file.chmod(0o555 if runnable else 0o444)
        for name in dirs:
            _read_only_dir(Path(top) / name)
    _read_only_dir(path)


def remove_tree(path: Path) -> None:
    """``shutil.rmtree`` of a tree with read-only folders in it."""

    def writable_then_retry(function: Any, failed: str, _: object) -> None:
        parent = Path(failed).parent
        with contextlib.suppress(OSError):
            parent.chmod(parent.stat().st_mode | stat.S_IWUSR)
            function(failed)

    if path.exists():
        shutil.rmtree(path, onerror=writable_then_retry)


def _read_only_dir(path: Path) -> None:
    if not path.is_symlink():
        path.chmod(0o555)


def _probe(given: Mapping[str, Any] | None) -> Probe:
    values = given or {}
    default = Probe()
    return Probe(
        initial_delay=float(values.get("initial_delay", default.initial_delay)),
        period=float(values.get("period", default.period)),
        timeout=float(values.get("timeout", default.timeout)),
        failure_threshold=int(values.get("failure_threshold", default.failure_threshold)),
    )
