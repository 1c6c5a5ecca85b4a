"""Components: versioned command definitions per workspace, and how pipelines resolve them.

A version is immutable apart from description, tags and the archived flag. Creating one
checks the definition (``domain.components``), checks that its code snapshot was uploaded to
the workspace, and pins its environment (``Environments.resolve``: a reference becomes a
name, a version and the spec itself), so a version means the same thing forever. Its
``definition_hash`` (the command, code, environment spec, run settings and typed ports) is
what a pipeline step's reuse fingerprint takes from it.

A pipeline component (``type: pipeline``: ports and ``jobs``) is a version too; its steps'
components are pinned when it is made (``services.pipeline_components``), and the components
given inline in it are kept as versions of Azure's anonymous component.

``resolve`` is the pipeline submit path's entry: a reference (``azureml:name:version``,
``name@latest``...) or an inline definition becomes a ``ResolvedComponent``. A registry
reference (``azureml://registries/<r>/components/...``) goes to the ``RegistryResolver``
(``services.registry_components``), which checks the caller's read there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session

from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.components import (
    ANONYMOUS_NAME,
    ComponentRef,
    ComponentSpec,
    check_component_name,
    parse_component,
    parse_component_ref,
)
from shipyard.domain.content import is_digest
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.pipeline_components import (
    PipelineComponentSpec,
    ResolvedComponent,
    is_pipeline_component,
    parse_pipeline_component,
)
from shipyard.domain.principals import Principal
from shipyard.schemas.components import (
    ComponentVersionCreate,
    ComponentVersionRead,
)
from shipyard.services.asset_versions import LATEST, VersionedAssets
from shipyard.services.authz import Authorizer
from shipyard.services.component_catalog import ComponentCatalog, version_reads
from shipyard.services.environments import Environments
from shipyard.services.pipeline_components import PipelineComponentPins
from shipyard.services.workspace_rows import live_workspace
from shipyard.store.base import utcnow
from shipyard.store.components import ComponentRow, ComponentVersionRow
from shipyard.store.database import Database
from shipyard.store.uploads import get_upload
from shipyard.store.workspaces import WorkspaceRow

ASSETS: VersionedAssets[ComponentRow, ComponentVersionRow] = VersionedAssets(
    "component", ComponentRow, ComponentVersionRow, "component_id"
)
# Kept in their own columns: the only parts of a version that may change (or that the row
# itself names).
_COLUMNS = ("description", "tags")

__all__ = ["ASSETS", "Components", "RegistryResolver", "ResolvedComponent"]


class RegistryResolver(Protocol):
    def resolve(
        self, principal: Principal, workspace: str, ref: ComponentRef, *, field: str
    ) -> ResolvedComponent:
        """A registry component for a step of a pipeline in ``workspace``."""


class Components(ComponentCatalog):
    def __init__(
        self,
        db: Database,
        environments: Environments,
        authorizer: Authorizer,
        *,
        registries: RegistryResolver | None = None,
    ) -> None:
        super().__init__(db, ASSETS)
        self.environments = environments
        self.authorizer = authorizer
        self.registries = registries
        self.pipelines = PipelineComponentPins(self.resolve, self._register_anonymous)

    # -- create -----------------------------------------------------------------------------

    def create(
        self, principal: Principal, workspace: str, name: str, body: ComponentVersionCreate
    ) -> ComponentVersionRead:
        check_component_name(name)
        data = body.model_dump(exclude_unset=True, by_alias=True)
        data.pop("$schema", None)
        if data.get("name") not in (None, name):
            raise InvalidInputError(
                f"the body names component {str(data['name'])[:100]!r} but the path {name!r}",
                code="name_mismatch",
                field="name",
            )
        full = {**data, "name": name}
        spec: ComponentSpec | PipelineComponentSpec = (
            self.pipelines.pinned(principal, workspace, full, prefix="")
            if is_pipeline_component(full)
            else self._pinned(principal, workspace, full, prefix="")
        )
        with self.db.read() as session:
            ws_id = live_workspace(session, workspace).id
        row = ASSETS.insert(
            self.db, ws_id, principal.id, name, spec.version, version_maker(principal, spec)
        )
        with self.db.read() as session:
            return version_reads(session, name, [row])[0]

    def _register_anonymous(
        self, principal: Principal, workspace: str, resolved: ResolvedComponent
    ) -> str:
        """Keep a component given inline in a pipeline component as a version of the
        anonymous component (its hash its version; made once), hidden from lists."""
        version = resolved.definition_hash[:32]
        with self.db.read() as session:
            ws_id = live_workspace(session, workspace).id
        make = version_maker(principal, resolved.ports)
        with contextlib.suppress(ConflictError):  # made before: the same definition
            ASSETS.insert(self.db, ws_id, principal.id, ANONYMOUS_NAME, version, make)
        with self.db.write() as session:
            ASSETS.set_archived(session, workspace, ANONYMOUS_NAME, None, True)
        return version

    def _pinned(
        self, principal: Principal, workspace: str, data: Mapping[str, Any], *, prefix: str
    ) -> ComponentSpec:
        """Checked, its code snapshot found in the workspace and its environment pinned."""
        if data.get("additional_includes"):
            raise InvalidInputError(
                "additional_includes are folded into the code snapshot by the CLI and SDK; "
                "over REST, upload the code folder with them and give its digest as code",
                code="additional_includes_not_folded",
                field=f"{prefix}additional_includes",
            )
        spec = parse_component(data, prefix=prefix)
        if spec.code is not None:
            with self.db.read() as session:
                _check_code(session, live_workspace(session, workspace), spec.code, prefix)
        environment = self.environments.resolve(
            principal, workspace, spec.environment, field=f"{prefix}environment"
        )
        return spec.with_environment(environment.pinned())

    # -- what pipelines use -----------------------------------------------------------------

    def resolve(
        self,
        principal: Principal,
        workspace: str,
        ref: str | Mapping[str, Any],
        *,
        field: str = "component",
    ) -> ResolvedComponent:
        """Pin a pipeline step's component: a reference (``azureml:name:version``,
        ``azureml:name@latest``, ``shipyard:`` forms, ``name:version``, ``name@latest``) or
        an inline definition (checked and pinned like a new version, but not registered:
        its name is Azure's anonymous one unless it has its own, its version its
        definition's hash). 4xx naming ``field`` (or the field inside it) when it cannot."""
        if isinstance(ref, Mapping) and is_pipeline_component(ref):
            # Its steps are resolved when the pipeline is planned, one level down.
            nested = parse_pipeline_component(ref, prefix=f"{field}.")
            digest = nested.definition_hash()
            return ResolvedComponent(
                nested.name or ANONYMOUS_NAME, digest[:32], nested.to_json(), digest
            )
        if isinstance(ref, Mapping):
            spec = self._pinned(principal, workspace, ref, prefix=f"{field}.")
            digest = spec.definition_hash()
            return ResolvedComponent(
                spec.name or ANONYMOUS_NAME, digest[:32], spec.to_json(), digest
            )
        if not isinstance(ref, str):
            raise InvalidInputError(
                "must be a reference (azureml:<name>:<version>) or a mapping",
                code="invalid_reference",
                field=field,
            )
        parsed = parse_component_ref(ref, field=field)
        if parsed.registry is not None:
            if self.registries is None:
                raise InvalidInputError(
                    f"{ref[:200]!r}: this server has no registries",
                    code="registries_unavailable",
                    field=field,
                )
            return self.registries.resolve(principal, workspace, parsed, field=field)
        self.authorizer.authorize(principal, actions.COMPONENTS_READ, workspace_scope(workspace))
        with self.db.read() as session:
            try:
                component, row = ASSETS.version(
                    session, workspace, parsed.name, parsed.version or LATEST
                )
            except NotFoundError as exc:
                raise NotFoundError(exc.detail, code=exc.code, field=field) from exc
            stored = {**row.spec, "description": row.description, "tags": dict(row.tags)}
            return ResolvedComponent(component.name, row.version, stored, row.definition_hash)


def version_maker(
    principal: Principal, spec: ComponentSpec | PipelineComponentSpec
) -> Callable[[str, str, int], ComponentVersionRow]:
    """How ``ASSETS.insert`` makes the version's row of a checked and pinned spec."""
    stored = spec.to_json()
    command = spec if isinstance(spec, ComponentSpec) else None

    def make(component_id: str, version: str, seq: int) -> ComponentVersionRow:
        now = utcnow()
        return ComponentVersionRow(
            component_id=component_id,
            version=version,
            seq=seq,
            spec={**{k: v for k, v in stored.items() if k not in _COLUMNS}, "version": version},
            definition_hash=spec.definition_hash(),
            code_digest=command.code.removeprefix("sha256:") if command and command.code else None,
            # A pipeline component runs its steps' environments, pinned in their components.
            environment=_environment_ref(command) if command else "",
            description=spec.description,
            tags=spec.tags,
            created_by=principal.id,
            created_at=now,
            updated_at=now,
        )

    return make


def _environment_ref(spec: ComponentSpec) -> str:
    pinned = spec.environment
    assert isinstance(pinned, dict)
    return f"{pinned['name']}:{pinned['version']}"


def _check_code(session: Session, ws: WorkspaceRow, code: str, prefix: str) -> None:
    field = f"{prefix}code"
    digest = code.removeprefix("sha256:")
    if not code.startswith("sha256:") or not is_digest(digest):
        raise InvalidInputError(
            "code must be 'sha256:<digest>' of an uploaded code snapshot; the CLI and SDK upload "
            "a local folder (with its additional_includes) and fill this in",
            code="invalid_code",
            field=field,
        )
    upload = get_upload(session, ws.id, "code", digest)
    if upload is None or upload.committed_at is None:
        raise NotFoundError(
            "the code snapshot has not been uploaded to this workspace",
            code="code_not_found",
            field=field,
        )
