"""Environments as specs: what a version asks for, checked, normalised and hashed. Pure.

An environment is a Python version plus pip requirement lines, given as our own ``python`` +
``pip_requirements`` or as an Azure-style conda file whose ``dependencies`` hold only
``python=X.Y[.Z]``, ``pip`` and a ``{pip: [...]}`` list (conda packages are refused: Shipyard
builds with uv, not conda). ``image:`` and ``build:`` (Docker) specs are kept as they are.

Every requirement line is parsed with ``packaging``; pip options (``-r``, ``--index-url``...),
URLs and direct references (``git+https://...``, ``pkg @ https://...``, ``file:``) and local
paths are refused unless the server's admin allows them (``environment_allow_pip_options``):
they would let a user point the server's builder at any file or index.

The normalised spec (sorted, trimmed requirement lines, the Python version) hashed with the
platform (OS, machine, the builder's default Python) is the ``spec_hash`` that names a build
in the environment registry: equal specs share one build, in every workspace.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from shipyard.domain.errors import InvalidInputError

# Azure ML's asset name rule: letters, digits, '-', '_' and '.', starting with a letter or digit.
ENVIRONMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"
ENVIRONMENT_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
LATEST = "latest"
# Azure's name for inline environments, versioned by a hash of their definition.
ANONYMOUS_NAME = "CliV2AnonymousEnvironment"
MAX_REQUIREMENTS = 1000
MAX_LINE = 2000
MAX_IMAGE = 512

_PYTHON = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_CONDA_PYTHON = re.compile(r"^python\s*(?:==?\s*(?P<version>3\.\d{1,2}(?:\.\d{1,3})?)(?:\.\*)?)?$")
_CONDA_PIP = re.compile(r"^pip(\s*(==?|>=|<=|<|>|!=)\s*[\w.*]+)?$")
_CONDA_KEYS = ("name", "channels", "dependencies", "prefix")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INLINE_COMMENT = re.compile(r"\s+#.*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_OPTION_INSIDE = re.compile(r"\s-{1,2}[A-Za-z]")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz", ".egg")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")


@dataclass(frozen=True)
class Platform:
    """Where builds run: part of every spec hash (a venv is not portable across these)."""

    system: str  # sys.platform
    machine: str  # platform.machine()
    python: str  # the builder's default Python, "3.11"
    # Built on an interpreter every user may run (jobs run as their own users): a venv on
    # a private interpreter (one under /root, say) would not start for them.
    for_all_users: bool = False

    @property
    def tag(self) -> str:
        tag = f"{self.system}-{self.machine}-py{self.python}"
        return f"{tag}-all-users" if self.for_all_users else tag


@dataclass(frozen=True)
class BuildContext:
    """A Docker build context (Azure's ``build:``): kept, built only where an engine is."""

    path: str
    dockerfile_path: str = "Dockerfile"


@dataclass(frozen=True)
class EnvironmentSpec:
    """What an environment holds, normalised: build it anywhere and get the same thing."""

    python: str | None = None
    pip: tuple[str, ...] = ()
    image: str | None = None
    build: BuildContext | None = None
    os_type: str = "linux"

    @property
    def needs_engine(self) -> bool:
        """Docker-based (``image`` or ``build``), not a virtual environment."""
        return self.image is not None or self.build is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "pip": list(self.pip),
            "image": self.image,
            "build": (
                {"path": self.build.path, "dockerfile_path": self.build.dockerfile_path}
                if self.build
                else None
            ),
            "os_type": self.os_type,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvironmentSpec:
        build = data.get("build")
        return cls(
            python=data.get("python"),
            pip=tuple(data.get("pip") or ()),
            image=data.get("image"),
            build=BuildContext(build["path"], build.get("dockerfile_path", "Dockerfile"))
            if build
            else None,
            os_type=data.get("os_type") or "linux",
        )

    def spec_hash(self, platform: Platform) -> str:
        """The build's name in the registry: sha256 of the canonical spec and the platform.
        An unset Python is the platform's, so ``python: "3.11"`` on a 3.11 builder and no
        ``python`` share a build."""
        canonical = {**self.to_json(), "python": self.python or platform.python}
        return _sha256({"spec": canonical, "platform": platform.tag})

    def definition_hash(self) -> str:
        """A hash of the definition alone (no platform): the version of an inline
        environment registered as ``CliV2AnonymousEnvironment``."""
        return _sha256(self.to_json())[:32]


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- parsing a spec -------------------------------------------------------------------------


def parse_spec(
    *,
    python: Any = None,
    pip_requirements: Any = None,
    conda_file: Any = None,
    image: Any = None,
    build: Any = None,
    os_type: Any = None,
    allow_pip_options: bool = False,
    prefix: str = "",
) -> EnvironmentSpec:
    """Check and normalise the fields of an environment; errors name the field (with
    ``prefix``, e.g. ``environment.``) and the line at fault."""
    if os_type not in (None, "linux"):
        raise InvalidInputError(
            f"os_type {str(os_type)[:20]!r} is not supported: Shipyard runs Linux environments",
            code="invalid_os_type",
            field=f"{prefix}os_type",
        )
    if image is not None and build is not None:
        raise InvalidInputError(
            "give image or build, not both", code="invalid_environment", field=f"{prefix}build"
        )
    if conda_file is not None and pip_requirements is not None:
        raise InvalidInputError(
            "give conda_file or pip_requirements, not both (pip lines can go in the conda "
            "file's `- pip:` list)",
            code="invalid_environment",
            field=f"{prefix}pip_requirements",
        )
    version = _python(python, f"{prefix}python") if python is not None else None
    lines: list[tuple[str, str]] = []
    if conda_file is not None:
        conda_python, lines = parse_conda(conda_file, field=f"{prefix}conda_file")
        if version is not None and conda_python is not None and conda_python != version:
            raise InvalidInputError(
                f"python {version!r} disagrees with the conda file's python={conda_python}",
                code="invalid_environment",
                field=f"{prefix}python",
            )
        version = version or conda_python
    elif pip_requirements is not None:
        lines = _pip_list(pip_requirements, f"{prefix}pip_requirements")
    normalised = {
        found
        for line, field in lines
        if (found := normalise_requirement(line, allow_pip_options=allow_pip_options, field=field))
    }
    return EnvironmentSpec(
        python=version,
        pip=tuple(sorted(normalised, key=lambda line: (line.lower(), line))),
        image=_image(image, f"{prefix}image") if image is not None else None,
        build=_build(build, f"{prefix}build") if build is not None else None,
    )


def check_pip_policy(spec: EnvironmentSpec, *, allow_pip_options: bool, field: str) -> None:
    """Refuse a stored spec's lines that the current policy does not allow (an admin may
    have turned ``environment_allow_pip_options`` off since it was registered)."""
    for index, line in enumerate(spec.pip):
        normalise_requirement(line, allow_pip_options=allow_pip_options, field=f"{field}.{index}")


def _python(value: Any, field: str) -> str:
    if isinstance(value, float):
        raise InvalidInputError(
            f"python {value!r} is a number; quote the version ('3.10'): YAML reads 3.10 as 3.1",
            code="invalid_python",
            field=field,
        )
    text = value.strip() if isinstance(value, str) else ""
    if not _PYTHON.fullmatch(text):
        raise InvalidInputError(
            f"python {str(value)[:40]!r} is not a Python 3 version such as '3.11' or '3.11.9'",
            code="invalid_python",
            field=field,
        )
    return text


def _pip_list(value: Any, field: str) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise InvalidInputError(
            "must be a list of requirement lines", code="invalid_requirements", field=field
        )
    if len(value) > MAX_REQUIREMENTS:
        raise InvalidInputError(
            f"at most {MAX_REQUIREMENTS} requirement lines",
            code="too_many_requirements",
            field=field,
        )
    lines = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidInputError(
                f"requirement {str(item)[:60]!r} must be text (quote it in YAML)",
                code="invalid_requirement",
                field=f"{field}.{index}",
            )
        lines.append((item, f"{field}.{index}"))
    return lines


def parse_conda(
    conda: Any, *, field: str = "conda_file"
) -> tuple[str | None, list[tuple[str, str]]]:
    """A conda environment file's Python version and its pip lines (each with its field)."""
    if not isinstance(conda, dict):
        raise InvalidInputError(
            "a conda file is a mapping with dependencies (python=X.Y, pip, and a pip: list)",
            code="invalid_conda_file",
            field=field,
        )
    for key in conda:
        if key not in _CONDA_KEYS:
            raise InvalidInputError(
                f"{str(key)[:60]!r} is not supported in a conda file (only name, channels and "
                "dependencies; set variables on the job's environment_variables)",
                code="invalid_conda_file",
                field=f"{field}.{key}",
            )
    dependencies = conda.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise InvalidInputError(
            "dependencies must be a list",
            code="invalid_conda_file",
            field=f"{field}.dependencies",
        )
    python: str | None = None
    lines: list[tuple[str, str]] = []
    for index, entry in enumerate(dependencies):
        where = f"{field}.dependencies.{index}"
        if isinstance(entry, dict):
            if set(entry) != {"pip"}:
                raise InvalidInputError(
                    "a mapping in dependencies may only be the pip list ({pip: [...]})",
                    code="invalid_conda_file",
                    field=where,
                )
            lines += _pip_list(entry["pip"], f"{where}.pip")
            continue
        text = entry.strip() if isinstance(entry, str) else ""
        if found := _CONDA_PYTHON.fullmatch(text):
            version = found.group("version")
            if version and python and version != python:
                raise InvalidInputError(
                    "python is given twice with different versions",
                    code="invalid_conda_file",
                    field=where,
                )
            python = version or python
        elif not _CONDA_PIP.fullmatch(text):
            raise InvalidInputError(
                f"{str(entry)[:100]!r} is a conda package: Shipyard builds environments with "
                "pip (uv), so list it under `- pip:` as a pip requirement instead "
                "(e.g. numpy==2.1.3)",
                code="conda_package_refused",
                field=where,
            )
    return python, lines


def normalise_requirement(line: str, *, allow_pip_options: bool, field: str) -> str | None:
    """One requirement line, checked and in canonical form; None for a blank or a comment."""
    if len(line) > MAX_LINE:
        raise _refused(line, f"is longer than {MAX_LINE} characters", "invalid_requirement", field)
    if _CONTROL.search(line):
        raise _refused(
            line, "holds a line break or a control character", "invalid_requirement", field
        )
    text = _INLINE_COMMENT.sub("", line.strip()).strip()
    if not text or text.startswith("#"):
        return None
    kind = _unsafe_kind(text)
    if kind is not None:
        if allow_pip_options:
            return text
        raise _refused(
            text,
            f"is {kind}; requirement lines may only name packages from the package index "
            "(an admin can allow more with environment_allow_pip_options)",
            "requirement_refused",
            field,
        )
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise _refused(
            text, f"is not a valid requirement: {str(exc)[:200]}", "invalid_requirement", field
        ) from exc
    if requirement.url:
        if allow_pip_options:
            return str(requirement)
        raise _refused(
            text,
            "is a direct reference to a URL; requirement lines may only name packages from "
            "the package index (an admin can allow more with environment_allow_pip_options)",
            "requirement_refused",
            field,
        )
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    return f"{canonicalize_name(requirement.name)}{extras}{requirement.specifier}{marker}"


def _unsafe_kind(text: str) -> str | None:
    """What makes a line more than a package name, or None."""
    if text.startswith("-") or _OPTION_INSIDE.search(text):
        return "a pip option"
    if "://" in text or _SCHEME.match(text):
        return "a URL"
    name_part = text.split(";", 1)[0].split("@", 1)[0]
    if (
        text.startswith((".", "~", "/", "\\"))
        or "/" in name_part
        or "\\" in name_part
        or name_part.strip().lower().endswith(_ARCHIVES)
    ):
        return "a local path"
    return None


def _refused(line: str, why: str, code: str, field: str) -> InvalidInputError:
    shown = line if len(line) <= 200 else line[:197] + "..."
    return InvalidInputError(f"requirement {shown!r} {why}", code=code, field=field)


def _image(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _IMAGE.fullmatch(value) or len(value) > MAX_IMAGE:
        raise InvalidInputError(
            f"image {str(value)[:100]!r} is not a Docker image reference",
            code="invalid_image",
            field=field,
        )
    return value


def _build(value: Any, field: str) -> BuildContext:
    path = value.get("path") if isinstance(value, dict) else None
    dockerfile = value.get("dockerfile_path", "Dockerfile") if isinstance(value, dict) else None
    extra = set(value) - {"path", "dockerfile_path"} if isinstance(value, dict) else set()
    if not isinstance(path, str) or not path or not isinstance(dockerfile, str) or extra:
        raise InvalidInputError(
            "build is {path: <build context>, dockerfile_path: Dockerfile}",
            code="invalid_build",
            field=field,
        )
    return BuildContext(path[:4096], dockerfile[:1024])


# -- references -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentRef:
    """A reference to a registered environment: a name and a version, or ``latest``."""

    name: str
    version: str | None = None  # None: the label
    label: str | None = None
    registry: str | None = None  # azureml://registries/<registry>/... (curated only)


_PREFIXED = re.compile(r"^(?:azureml|shipyard):(?!//)(?P<rest>.*)$", re.IGNORECASE)
_SHORT = re.compile(r"^(?P<name>[^:@/\s]+)(?::(?P<version>[^:@/\s]+)|@(?P<label>[^:@/\s]+))?$")
_REGISTRY = re.compile(
    r"^(?:azureml|shipyard)://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/]+)"
    r"/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))$",
    re.IGNORECASE,
)
_ARM = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/Microsoft\.MachineLearningServices"
    r"/workspaces/[^/]+/environments/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$",
    re.IGNORECASE,
)


def parse_environment_ref(text: str, *, field: str) -> EnvironmentRef:
    """``azureml:name:version``, ``azureml:name@latest`` (or ``shipyard:``, or no prefix; a
    bare name is its latest version), Azure's long ARM form, or
    ``azureml://registries/<r>/environments/<name>/versions/<v>`` (``/labels/latest``)."""
    text = text.strip()
    if found := _REGISTRY.match(text):
        return _ref(found, field, text, registry=found.group("registry"))
    prefixed = _PREFIXED.match(text)
    rest = prefixed.group("rest") if prefixed else text
    if found := _ARM.match(rest):
        return EnvironmentRef(found.group("name"), found.group("version"))
    if found := _SHORT.match(rest):
        return _ref(found, field, text)
    shown = text if len(text) <= 200 else text[:197] + "..."
    raise InvalidInputError(
        f"{shown!r} is not an environment reference: use azureml:<name>:<version>, "
        "azureml:<name>@latest, or an inline environment",
        code="invalid_reference",
        field=field,
    )


def _ref(
    found: re.Match[str], field: str, text: str, registry: str | None = None
) -> EnvironmentRef:
    label = found.group("label")
    if found.group("version") is None and label is None:
        label = LATEST
    if label != LATEST and label is not None:
        raise InvalidInputError(
            f"{text[:200]!r}: the only label of environments is {LATEST!r}",
            code="invalid_label",
            field=field,
        )
    return EnvironmentRef(found.group("name"), found.group("version"), label, registry)


# -- curated environments -------------------------------------------------------------------


@dataclass(frozen=True)
class CuratedEnvironment:
    name: str
    version: str
    description: str
    spec: EnvironmentSpec


# Pinned to the versions the project's own tests use, so a build comes from uv's cache.
# mlflow-skinny is the MLflow client without the server: `import mlflow` and logging to the
# job's tracking URI work, at a tenth of the full package's size.
MLFLOW = "mlflow-skinny==3.17.2"
CURATED: tuple[CuratedEnvironment, ...] = (
    CuratedEnvironment(
        "shipyard-minimal",
        "1",
        "Python and the MLflow client: `import mlflow; mlflow.log_metric(...)` in a job.",
        EnvironmentSpec(pip=(MLFLOW,)),
    ),
    CuratedEnvironment(
        "shipyard-sklearn",
        "1",
        "scikit-learn, pandas, skops and the MLflow client (Azure's AzureML-sklearn-* map here).",
        # skops: the format MLflow 3 saves scikit-learn models in by default.
        EnvironmentSpec(pip=(MLFLOW, "pandas==3.1.1", "scikit-learn==1.9.1", "skops==0.16.0")),
    ),
)
_CURATED = {env.name: env for env in CURATED}
# Azure's curated names (``AzureML-<x>`` in a workspace, ``<x>`` in the azureml registry)
# by the start of <x>.
_AZURE_FAMILIES = (("sklearn", "shipyard-sklearn"), ("minimal", "shipyard-minimal"))
AZURE_PREFIX = "azureml-"


def curated(name: str) -> CuratedEnvironment | None:
    return _CURATED.get(name)


def is_reserved(name: str) -> bool:
    """Names users may not register: the curated ones and Azure's ``AzureML-*``."""
    return name in _CURATED or name.lower().startswith(AZURE_PREFIX)


def azure_curated(name: str, *, field: str, registry: bool = False) -> CuratedEnvironment | None:
    """The curated environment an Azure curated name maps to; None when ``name`` is not an
    Azure curated name; InvalidInputError when it is one Shipyard has no match for."""
    lowered = name.lower()
    if registry:
        family = lowered.removeprefix(AZURE_PREFIX)
    elif lowered.startswith(AZURE_PREFIX):
        family = lowered[len(AZURE_PREFIX) :]
    else:
        return None
    for start, target in _AZURE_FAMILIES:
        if family.startswith(start):
            return _CURATED[target]
    names = ", ".join(env.name for env in CURATED)
    raise InvalidInputError(
        f"Azure's curated environment {name[:100]!r} has no match in Shipyard (curated: "
        f"{names}; AzureML-sklearn-* and AzureML-minimal-* map to them); register your own "
        "environment with pip_requirements (e.g. torch==2.5.1) and refer to it instead",
        code="curated_environment_unsupported",
        field=field,
    )


def check_version_text(version: str, *, field: str = "version") -> None:
    if not re.fullmatch(ENVIRONMENT_VERSION, version) or version == LATEST:
        raise InvalidInputError(
            f"version {version[:70]!r} is invalid ('latest' is a label, not a version)",
            code="invalid_version",
            field=field,
        )


def requirement_lines(text: str) -> list[str]:
    """The lines of a requirements.txt as a ``pip_requirements`` list (comments dropped)."""
    return [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
