"""Components in a registry: made once, used by pipelines of every workspace.

A registry's component is a command component like a workspace's (same rows, same version
rules: immutable, the next number, ``latest``, archiving), with one difference that follows
from being usable everywhere: **it names nothing in a workspace**.

- Its environment is kept by value: an inline environment (Azure's anonymous one) or a
  curated one, pinned with its whole spec like any component's. A reference to a
  workspace's environment (``azureml:name:version``) is refused naming ``environment``: it
  would resolve differently, or not at all, in another workspace, and the workspace could
  delete it. (Registry environments are a later feature.)
- Its code snapshot is copied into the registry when the version is made
  (``services.registry_code``), and from there into a workspace when a pipeline there uses it.
- A pipeline component in a registry would name its steps' components: refused for now.

Using one: ``azureml://registries/<r>/components/<name>/versions/<v>`` (or
``/labels/latest``, or no suffix for the latest) in a step's ``component:``; the caller needs
``registries/assets/read`` at the registry, checked when the pipeline is submitted, and the
step's reuse fingerprint takes the version's ``definition_hash`` as for a workspace's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain import actions
from shipyard.domain.actions import registry_scope, workspace_scope
from shipyard.domain.components import (
    ComponentRef,
    ComponentSpec,
    check_component_name,
    parse_component,
)
from shipyard.domain.content import is_digest
from shipyard.domain.environments import (
    ANONYMOUS_NAME,
    azure_curated,
    curated,
    parse_environment_ref,
    parse_spec,
)
from shipyard.domain.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.pipeline_components import ResolvedComponent, is_pipeline_component
from shipyard.domain.principals import Principal
from shipyard.schemas.components import (
    ComponentVersionRead,
    RegistryComponentVersionCreate,
)
from shipyard.services.asset_versions import LATEST, VersionedAssets
from shipyard.services.authz import Authorizer, registry_not_found
from shipyard.services.component_catalog import ComponentCatalog, version_reads
from shipyard.services.components import version_maker
from shipyard.services.environments import Environments, ResolvedEnvironment
from shipyard.services.registry_code import RegistryCode
from shipyard.services.workspace_rows import live_workspace
from shipyard.store.base import Base
from shipyard.store.components import ComponentRow, ComponentVersionRow
from shipyard.store.database import Database
from shipyard.store.registries import RegistryRow, get_registry

A = TypeVar("A", bound=Base)
V = TypeVar("V", bound=Base)

# The fields of an inline environment (services.environments takes the same).
_ENVIRONMENT_KEYS = frozenset(
    {"$schema", "name", "version", "description", "tags", "python", "pip_requirements"}
    | {"conda_file", "image", "build", "os_type", "inference_config"}
)


class RegistryAssets(VersionedAssets[A, V]):
    """``VersionedAssets`` whose assets belong to a registry (``registry_id``): the owner's
    id and name stand where the workspace's do."""

    def find(self, session: Session, workspace_id: str, name: str) -> A | None:
        query = select(self.asset_row).where(
            self._a.registry_id == workspace_id, self._a.name == name
        )
        return session.scalars(query).one_or_none()

    def asset(self, session: Session, workspace: str, name: str) -> A:
        row = self.find(session, live_registry(session, workspace).id, name)
        if row is None:
            raise NotFoundError(
                f"{self.noun} {name[:255]!r} does not exist in registry {workspace!r}",
                code=f"{self.noun}_not_found",
                field="name",
            )
        return row

    def insert(
        self,
        db: Database,
        workspace_id: str,
        principal_id: str,
        name: str,
        version: str | None,
        make: Callable[[str, str, int], V],
    ) -> V:
        # The asset row is made here, with its registry; the shared insert then finds it.
        with contextlib.suppress(IntegrityError), db.write() as session:
            if self.find(session, workspace_id, name) is None:
                session.add(
                    self.asset_row(registry_id=workspace_id, name=name, created_by=principal_id)
                )
        return super().insert(db, workspace_id, principal_id, name, version, make)

    def page_assets(
        self,
        session: Session,
        workspace: str,
        *,
        include_archived: bool,
        page_token: str | None,
        max_results: int,
    ) -> tuple[list[A], str | None]:
        after = decode_page_token(page_token)
        query = select(self.asset_row).where(
            self._a.registry_id == live_registry(session, workspace).id
        )
        if not include_archived:
            query = query.where(self._a.archived.is_(False))
        if after is not None:
            query = query.where(self._a.name > after)
        rows = list(session.scalars(query.order_by(self._a.name).limit(max_results + 1)))
        more = len(rows) > max_results
        rows = rows[:max_results]
        return rows, encode_page_token(str(self._a_name(rows[-1]))) if more else None


ASSETS: RegistryAssets[ComponentRow, ComponentVersionRow] = RegistryAssets(
    "component", ComponentRow, ComponentVersionRow, "component_id"
)


@dataclass(frozen=True)
class RegistryResolvedComponent(ResolvedComponent):
    """A registry's component pinned for a step: it refers to itself by its registry URI
    (what a pipeline component that uses it keeps)."""

    registry: str = ""

    @property
    def ref(self) -> str:
        return registry_uri(self.registry, self.name, self.version)


def registry_uri(registry: str, name: str, version: str) -> str:
    return f"azureml://registries/{registry}/components/{name}/versions/{version}"


def live_registry(session: Session, name: str) -> RegistryRow:
    row = get_registry(session, name)
    if row is None:
        raise registry_not_found(name)
    return row


def count_components(session: Session, registry_id: str) -> tuple[int, list[str]]:
    """How many components the registry holds, and the first few names (for messages)."""
    where = ComponentRow.registry_id == registry_id
    total = session.scalar(select(func.count()).select_from(ComponentRow).where(where)) or 0
    names = session.scalars(select(ComponentRow.name).where(where).order_by(ComponentRow.name))
    return int(total), list(names)[:5]


class RegistryComponents(ComponentCatalog):
    def __init__(
        self,
        db: Database,
        environments: Environments,
        authorizer: Authorizer,
        code: RegistryCode,
    ) -> None:
        super().__init__(db, ASSETS)
        self.environments = environments
        self.authorizer = authorizer
        self.code = code

    # -- create -----------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        registry: str,
        name: str,
        body: RegistryComponentVersionCreate,
    ) -> ComponentVersionRead:
        check_component_name(name)
        data = body.model_dump(exclude_unset=True, by_alias=True)
        data.pop("$schema", None)
        code_workspace = data.pop("code_workspace", None)
        if data.get("name") not in (None, name):
            raise InvalidInputError(
                f"the body names component {str(data['name'])[:100]!r} but the path {name!r}",
                code="name_mismatch",
                field="name",
            )
        full = {**data, "name": name}
        if is_pipeline_component(full):
            raise InvalidInputError(
                "a registry holds command components only, for now: register the pipeline "
                "component in a workspace (its steps may use this registry's components)",
                code="unsupported_component_type",
                field="type",
            )
        if full.get("additional_includes"):
            raise InvalidInputError(
                "additional_includes are folded into the code snapshot by the CLI and SDK",
                code="additional_includes_not_folded",
                field="additional_includes",
            )
        spec = parse_component(full)
        environment = self._environment(spec.environment, field="environment")
        with self.db.read() as session:
            registry_id = live_registry(session, registry).id
        if spec.code is not None:
            self._take_code(principal, registry_id, spec.code, code_workspace)
        pinned = spec.with_environment(environment.pinned())
        row = ASSETS.insert(
            self.db,
            registry_id,
            principal.id,
            name,
            pinned.version,
            version_maker(principal, pinned),
        )
        with self.db.read() as session:
            return self._reads(session, registry, name, [row])[0]

    def _environment(self, ref: object, *, field: str) -> ResolvedEnvironment:
        """Inline or curated, pinned by value; a workspace's environment is refused."""
        builder = self.environments.builder
        if isinstance(ref, dict):
            for key in ref:
                if key not in _ENVIRONMENT_KEYS:
                    raise InvalidInputError(
                        f"{str(key)[:60]!r} is not a field of an environment",
                        code="unknown_field",
                        field=f"{field}.{key}",
                    )
            spec = parse_spec(
                python=ref.get("python"),
                pip_requirements=ref.get("pip_requirements"),
                conda_file=ref.get("conda_file"),
                image=ref.get("image"),
                build=ref.get("build"),
                os_type=ref.get("os_type"),
                allow_pip_options=self.environments.allow_pip_options,
                prefix=f"{field}.",
            )
            builder.check_buildable(spec, field)
            return ResolvedEnvironment(
                ANONYMOUS_NAME, spec.definition_hash(), spec, builder.spec_hash(spec)
            )
        if not isinstance(ref, str):
            raise InvalidInputError(
                "must be an inline environment or a curated one", code="invalid_reference",
                field=field,
            )  # fmt: skip
        parsed = parse_environment_ref(ref, field=field)
        if parsed.registry is None or parsed.registry.lower() == "azureml":
            found = curated(parsed.name) or azure_curated(
                parsed.name, field=field, registry=parsed.registry is not None
            )
            if found is not None:
                builder.check_buildable(found.spec, field)
                return ResolvedEnvironment(
                    found.name, found.version, found.spec, builder.spec_hash(found.spec), True
                )
        if parsed.registry is not None and parsed.registry.lower() != "azureml":
            why = "registries hold no environments yet"
        else:
            why = "it names a workspace's environment, which other workspaces cannot use"
        raise InvalidInputError(
            f"{ref[:200]!r} cannot be a registry component's environment: {why}; give the "
            "environment inline (image, conda_file, pip_requirements...) or a curated one",
            code="workspace_reference_in_registry",
            field=field,
        )

    def _take_code(
        self, principal: Principal, registry_id: str, code: str, workspace: str | None
    ) -> None:
        digest = code.removeprefix("sha256:")
        if not code.startswith("sha256:") or not is_digest(digest):
            raise InvalidInputError(
                "code must be 'sha256:<digest>' of a code snapshot uploaded to code_workspace; "
                "the CLI and SDK upload a local folder and fill both in",
                code="invalid_code",
                field="code",
            )
        if self.code.has(registry_id, digest):
            return  # an earlier version brought the same code
        if workspace is None:
            raise InvalidInputError(
                "code_workspace is required with code: the workspace the snapshot was "
                "uploaded to, which the registry copies it from",
                code="missing_field",
                field="code_workspace",
            )
        try:
            self.authorizer.authorize(principal, actions.JOBS_READ, workspace_scope(workspace))
        except ShipyardError as exc:
            exc.field = "code_workspace"
            raise
        with self.db.read() as session:
            try:
                ws = live_workspace(session, workspace)
            except NotFoundError as exc:
                exc.field = "code_workspace"
                raise
        self.code.take_from_workspace(ws, registry_id, digest, field="code")

    # -- change -----------------------------------------------------------------------------

    def delete(self, registry: str, name: str, version: str | None) -> None:
        """Delete a version, or with no version the component. Pipelines submitted before
        keep running (a step keeps its pinned definition and its workspace's copy of the
        code); later submits naming it get a 404. The last version takes the component
        with it, so an emptied registry can be deleted."""
        with self.db.write() as session:
            if version is None:
                session.delete(ASSETS.asset(session, registry, name))
                return
            component, row = ASSETS.version(session, registry, name, version, labels=False)
            session.delete(row)
            session.flush()
            left = select(func.count()).where(ComponentVersionRow.component_id == component.id)
            if not session.scalar(left):
                session.delete(component)

    # -- what pipelines use -----------------------------------------------------------------

    def resolve(
        self, principal: Principal, workspace: str, ref: ComponentRef, *, field: str
    ) -> ResolvedComponent:
        """The version ``ref`` names, for a step of a pipeline in ``workspace``, its code
        snapshot copied into the workspace. The caller must read the registry's assets:
        otherwise, as for an unknown registry, name or version, a 4xx naming ``field``."""
        registry = ref.registry
        assert registry is not None
        try:
            self.authorizer.authorize(
                principal, actions.REGISTRY_ASSETS_READ, registry_scope(registry)
            )
            with self.db.read() as session:
                component, row = ASSETS.version(session, registry, ref.name, ref.version or LATEST)
                registry_id = str(component.registry_id)
                stored = {**row.spec, "description": row.description, "tags": dict(row.tags)}
                resolved = RegistryResolvedComponent(
                    component.name, row.version, stored, row.definition_hash, registry=registry
                )
                ws = live_workspace(session, workspace)
        except ShipyardError as exc:
            if exc.code != "workspace_not_found":
                exc.field = field
            raise
        if row.code_digest is not None:
            self.code.give_to_workspace(principal, ws, registry_id, row.code_digest)
        return resolved

    # -- helpers ----------------------------------------------------------------------------

    def _reads(
        self, session: Session, registry: str, name: str, rows: Sequence[ComponentVersionRow]
    ) -> list[ComponentVersionRead]:
        reads = version_reads(session, name, rows)
        return [
            read.model_copy(update={"registry": registry, "environment": _environment_ref(row)})
            for read, row in zip(reads, rows, strict=True)
        ]


def _environment_ref(row: ComponentVersionRow) -> str:
    """A curated environment by its name (every workspace has it); an inline one as the
    registry's anonymous environment, as Azure shows it."""
    pinned: dict[str, Any] = ComponentSpec.from_json(row.spec).environment  # type: ignore[assignment]
    if pinned.get("curated"):
        return f"azureml:{pinned['name']}:{pinned['version']}"
    return f"{pinned['name']}:{pinned['version']} (inline)"
