"""Submitting command jobs and following them: ``ws.jobs.create``, ``stream``, ``cancel``.

A job is Azure ML's command job, as a YAML file or built in Python::

    from shipyard.sdk.jobs import Input, Output, command

    job = command(
        command="python train.py --data ${{inputs.data}} --lr ${{inputs.lr}} "
        "--out ${{outputs.model}}",
        code="./src",
        environment="azureml:AzureML-sklearn-1.5@latest",
        inputs={"data": Input(type="uri_folder", path="azureml:customers@latest"), "lr": 0.1},
        outputs={"model": Output(type="uri_folder")},
        experiment_name="churn",
    )
    submitted = ws.jobs.create(job)
    ws.jobs.stream(submitted.name)

Before it submits, the SDK uploads what is local: the ``code`` folder (by content, honouring
``.shipyardignore``/``.amlignore``/``.gitignore``; unchanged code uploads nothing) and any
input whose ``path`` is a local file or folder (as the data uploads do). The server gets
references only.
"""

from __future__ import annotations

import builtins
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import quote

from shipyard.domain.asset_uris import LocalPath, parse_asset_path
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.data import DataFileList
from shipyard.schemas.jobs import JobRead
from shipyard.sdk import code as code_rules
from shipyard.sdk.artifacts import DEFAULT_WORKERS
from shipyard.sdk.code import local_path, localize_component, upload_code
from shipyard.sdk.data import download_files
from shipyard.sdk.environments import read_local_parts
from shipyard.sdk.http import HttpSession
from shipyard.sdk.uploads import ContentUploads, UploadProgress, hash_local
from shipyard.sdk.yaml import load_yaml_file

TERMINAL = frozenset({"Completed", "Failed", "Canceled"})
LOG_OFFSET_HEADER = "X-Shipyard-Log-Offset"
LOG_COMPLETE_HEADER = "X-Shipyard-Log-Complete"
JOB_STATUS_HEADER = "X-Shipyard-Job-Status"
_ASSET_SCHEMES = ("azureml:", "shipyard:")


@dataclass
class Input:
    """A data or model input: an asset (``azureml:name:version``, ``name@latest``), a
    datastore URI, a job output URI, ``runs:/...``, an http(s) URL (``mode="direct"``) or a
    local path (uploaded at submit)."""

    path: str
    type: str = "uri_folder"
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "path": self.path}
        if self.mode is not None:
            body["mode"] = self.mode
        return body


@dataclass
class Output:
    """Where an output goes (the workspace's default datastore when ``path`` is None), and
    ``name``/``version`` to register it as an asset when the job completes."""

    type: str = "uri_folder"
    mode: str | None = None
    path: str | None = None
    name: str | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class JobDefinition(Protocol):
    """A job built in Python: ``command(...)``, a ``@pipeline`` function's result
    (``PipelineJob``) or ``sweep(...)`` (``SweepJob``). ``to_dict()`` is its job YAML."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class CommandJob:
    command: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "command", "command": self.command, **self.fields}


def command(
    command: str,
    *,
    code: str | Path | None = None,
    environment: str | Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Output | None] | None = None,
    **fields: Any,
) -> CommandJob:
    """A command job, as ``azure.ai.ml.command`` builds one (``compute``, ``display_name``,
    ``experiment_name``, ``environment_variables``, ``limits``, ``resources``, ``tags``...
    go in ``fields``)."""
    body: dict[str, Any] = dict(fields)
    if code is not None:
        body["code"] = str(code)
    if environment is not None:
        body["environment"] = environment if isinstance(environment, str) else dict(environment)
    if inputs:
        body["inputs"] = {k: v.to_dict() if isinstance(v, Input) else v for k, v in inputs.items()}
    if outputs:
        body["outputs"] = {
            k: v.to_dict() if isinstance(v, Output) else v for k, v in outputs.items()
        }
    return CommandJob(command, body)


@dataclass(frozen=True)
class LogPiece:
    text: str
    status: str
    complete: bool


class JobSubmissions:
    """The routes of submitted jobs; ``ws.jobs`` exposes these."""

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._workspace = workspace
        self._base = f"/api/v1/workspaces/{quote(workspace, safe='')}/jobs"
        self._code = ContentUploads(
            http, f"/api/v1/workspaces/{quote(workspace, safe='')}/code/artifacts"
        )
        self._data = ContentUploads(
            http, f"/api/v1/workspaces/{quote(workspace, safe='')}/data/artifacts"
        )

    def path(self, name: str) -> str:
        return f"{self._base}/{quote(name, safe='')}"

    def create(
        self,
        job: JobDefinition | Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> JobRead:
        spec = dict(job) if isinstance(job, Mapping) else job.to_dict()
        if spec.get("type") == "pipeline":
            spec = self.prepare_pipeline(spec, base_dir=base_dir, progress=progress)
        elif spec.get("type") == "sweep":
            spec = self.prepare_sweep(spec, base_dir=base_dir, progress=progress)
        else:
            spec = self.prepare(spec, base_dir=base_dir, progress=progress)
        return self._http.send_model("POST", self._base, JobRead, spec)

    def prepare_pipeline(
        self,
        spec: dict[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> dict[str, Any]:
        """A pipeline's local parts uploaded: components given as local YAML files are
        inlined with their code uploaded, inline steps' code and every local input path are
        uploaded; the server gets references only."""
        spec = dict(spec)
        spec.setdefault("experiment_name", Path.cwd().name or "Default")
        inputs = spec.get("inputs")
        if isinstance(inputs, dict):
            spec["inputs"] = {
                name: self._input(name, value, base_dir, progress) for name, value in inputs.items()
            }
        jobs = spec.get("jobs")
        if isinstance(jobs, dict):
            spec["jobs"] = {
                name: self._step(name, step, base_dir, progress) if isinstance(step, dict) else step
                for name, step in jobs.items()
            }
        return spec

    def prepare_sweep(
        self,
        spec: dict[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> dict[str, Any]:
        """A sweep's local parts uploaded: the trial's code folder (and local environment
        files) and every local input path."""
        spec = dict(spec)
        spec.setdefault("experiment_name", Path.cwd().name or "Default")
        trial = spec.get("trial")
        if isinstance(trial, dict):
            trial = dict(trial)
            code = trial.get("code")
            if isinstance(code, str) and not code.startswith("sha256:"):
                trial["code"] = upload_code(
                    self._code, code, base_dir=base_dir, progress=progress
                ).ref
            environment = trial.get("environment")
            if isinstance(environment, dict):
                environment = dict(environment)
                read_local_parts(environment, base_dir, field="trial.environment.")
                trial["environment"] = environment
            spec["trial"] = trial
        inputs = spec.get("inputs")
        if isinstance(inputs, dict):
            spec["inputs"] = {
                name: self._input(name, value, base_dir, progress) for name, value in inputs.items()
            }
        return spec

    def localize_pipeline_component(
        self,
        component: Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> dict[str, Any]:
        """A pipeline component's local parts dealt with, as a pipeline's are: its steps'
        local component files inlined (their code uploaded), local inputs uploaded."""
        return self._inline_component(dict(component), base_dir, progress, "", ())

    def _step(
        self,
        name: str,
        step: dict[str, Any],
        base_dir: Path | None,
        progress: UploadProgress | None,
        prefix: str = "",
        seen: tuple[Path, ...] = (),
    ) -> dict[str, Any]:
        step = dict(step)
        where = f"{prefix}jobs.{name}."
        for key in ("component", "trial"):  # a sweep step's trial is a component too
            value = step.get(key)
            if isinstance(value, str) and _is_local_file(value):
                path = local_path(value, base_dir, f"{where}{key}")
                if path.resolve() in seen:
                    raise InvalidInputError(
                        f"{value!r} contains itself: a pipeline component file that is among "
                        "its own steps (directly or not) would never end",
                        code="component_cycle",
                        field=f"{where}{key}",
                    )
                document = load_yaml_file(path)
                step[key] = self._inline_component(
                    dict(document.data), path.resolve().parent, progress, f"{where}{key}.",
                    (*seen, path.resolve()),
                )  # fmt: skip
            elif isinstance(value, dict) and (
                key == "component" or "inputs" in value or "outputs" in value
            ):
                step[key] = self._inline_component(
                    dict(value), base_dir, progress, f"{where}{key}.", seen
                )
        trial = step.get("trial")  # an inline command trial: its code uploaded
        if isinstance(trial, dict) and isinstance(trial.get("code"), str):
            trial = dict(trial)
            if not trial["code"].startswith("sha256:"):
                uploaded = upload_code(
                    self._code, trial["code"], base_dir=base_dir, progress=progress
                )
                trial["code"] = uploaded.ref
            step["trial"] = trial
        code = step.get("code")
        if isinstance(code, str) and not code.startswith("sha256:"):
            step["code"] = upload_code(self._code, code, base_dir=base_dir, progress=progress).ref
        if isinstance(step.get("inputs"), dict):
            step["inputs"] = {
                k: self._input(f"{name}.inputs.{k}", v, base_dir, progress)
                for k, v in step["inputs"].items()
            }
        return step

    def _inline_component(
        self,
        component: dict[str, Any],
        base_dir: Path | None,
        progress: UploadProgress | None,
        prefix: str = "",
        seen: tuple[Path, ...] = (),
    ) -> dict[str, Any]:
        if component.get("type") != "pipeline":
            return localize_component(self._code, component, base_dir=base_dir, progress=progress)
        jobs = component.get("jobs")  # a pipeline component: its steps as a pipeline's
        if isinstance(jobs, dict):
            component["jobs"] = {
                name: self._step(name, step, base_dir, progress, prefix, seen)
                if isinstance(step, dict)
                else step
                for name, step in jobs.items()
            }
        return component

    def prepare(
        self,
        spec: dict[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> dict[str, Any]:
        """Upload the local code folder and local inputs; returns the spec with references."""
        spec = dict(spec)
        spec.setdefault("experiment_name", Path.cwd().name or "Default")
        code = spec.get("code")
        if isinstance(code, str) and not code.startswith("sha256:"):
            snapshot = code_rules.upload_code(
                self._code, code, base_dir=base_dir, progress=progress
            )
            spec["code"] = snapshot.ref
            properties = dict(spec.get("properties") or {})
            if snapshot.folder is not None:
                for key, value in code_rules.git_properties(snapshot.folder).items():
                    properties.setdefault(key, value)
            if properties:
                spec["properties"] = properties
        environment = spec.get("environment")
        if isinstance(environment, dict):
            environment = dict(environment)
            read_local_parts(environment, base_dir, field="environment.")
            spec["environment"] = environment
        inputs = spec.get("inputs")
        if isinstance(inputs, dict):
            spec["inputs"] = {
                name: self._input(name, value, base_dir, progress) for name, value in inputs.items()
            }
        return spec

    def _input(
        self, name: str, value: Any, base_dir: Path | None, progress: UploadProgress | None
    ) -> Any:
        if not isinstance(value, dict) or not isinstance(value.get("path"), str):
            return value
        path = str(value["path"])
        if path.lower().startswith(_ASSET_SCHEMES) and not path.lower().startswith(
            tuple(s + "//" for s in _ASSET_SCHEMES)
        ):
            return value
        parsed = parse_asset_path(path, field=f"inputs.{name}.path")
        if not isinstance(parsed, LocalPath):
            return value
        local = local_path(parsed.path, base_dir, f"inputs.{name}.path")
        content = hash_local(local, field=f"inputs.{name}.path")
        uploaded = self._data.upload(content, progress=progress)
        uri = uploaded.uri + (f"/{local.name}" if content.is_file else "")
        return {**value, "path": uri}

    def get(self, name: str) -> JobRead:
        return self._http.get_model(self.path(name), JobRead)

    def list(
        self,
        *,
        parent_job_name: str | None = None,
        status: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[JobRead]:
        params = {"parent_job_name": parent_job_name, "status": status, "max_results": page_size}
        return self._http.iterate(self._base, JobRead, params)

    def download(
        self,
        name: str,
        *,
        output_name: str = "artifacts",
        download_path: str | Path = ".",
        workers: int = DEFAULT_WORKERS,
    ) -> Path:
        """Every file of an output (``artifacts`` by default: what the job wrote under
        ./outputs and ./logs, and its logs) into ``download_path/<output_name>``."""
        files_url = f"{self.path(name)}/outputs/{quote(output_name, safe='')}/files"
        listing = DataFileList.model_validate(
            self._http.request("GET", files_url, params={"recursive": True}).json()
        )
        destination = Path(download_path) / output_name
        download_files(self._http, files_url, listing.items, destination, workers=workers)
        return destination

    def code_files(self, name: str) -> builtins.list[str]:
        """The paths of the job's code snapshot, as submitted."""
        listing = DataFileList.model_validate(
            self._http.request("GET", self.path(name) + "/code", params={"recursive": True}).json()
        )
        return [entry.path for entry in listing.items if not entry.is_dir]

    def archive(self, name: str) -> None:
        self._http.request("POST", self.path(name) + "/archive")

    def restore(self, name: str) -> None:
        self._http.request("POST", self.path(name) + "/restore")

    def cancel(self, name: str) -> JobRead:
        return self._http.send_model("POST", self.path(name) + "/cancel", JobRead)

    def logs(
        self, name: str, offset: int = 0, *, wait: float = 0.0
    ) -> tuple[bytes, int, str, bool]:
        response = self._http.request(
            "GET", self.path(name) + "/logs", params={"offset": offset, "wait": wait}
        )
        return (
            response.content,
            int(response.headers.get(LOG_OFFSET_HEADER, offset + len(response.content))),
            response.headers.get(JOB_STATUS_HEADER, ""),
            response.headers.get(LOG_COMPLETE_HEADER) == "true",
        )

    def follow(self, name: str, *, wait: float = 10.0) -> Iterator[LogPiece]:
        """The job's output as it comes, until the job has ended and all of it was read."""
        offset = 0
        last_status = ""
        while True:
            data, offset, status, complete = self.logs(name, offset, wait=wait)
            if data or complete or status != last_status:  # a new status is news too
                yield LogPiece(data.decode("utf-8", "replace"), status, complete)
                last_status = status
            if complete:
                return
            if not data and status in TERMINAL:
                time.sleep(0.2)  # ended, its log is being stored: ask again shortly

    def stream(
        self,
        name: str,
        out: TextIO | None = None,
        *,
        on_status: Callable[[str], None] | None = None,
    ) -> JobRead:
        """Print the job's output until it ends; returns the ended job."""
        target = out or sys.stdout
        for piece in self.follow(name):
            if piece.text:
                target.write(piece.text)
                target.flush()
            if on_status is not None:
                on_status(piece.status)
        return self.get(name)


def _is_local_file(reference: str) -> bool:
    """A step's ``component:`` that names a YAML file (not ``azureml:``/``shipyard:``)."""
    lowered = reference.lower()
    if lowered.startswith(_ASSET_SCHEMES):
        return False
    return lowered.endswith((".yml", ".yaml")) or "/" in reference
