"""Reading and changing component versions, the same in a workspace and in a registry.

A component lives in a container (a workspace or a registry): ``VersionedAssets`` knows how
to find one by the container's name, and ``version_reads`` how to show versions. The two
services (``services.components``, ``services.registry_components``) differ in how they make
versions and resolve them for pipelines, not in this: they take it from ``ComponentCatalog``
and a registry adds its own fields to what a version shows (``_reads``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from shipyard.domain.components import ComponentSpec
from shipyard.domain.pipeline_components import PipelineComponentSpec, is_pipeline_component
from shipyard.schemas.common import Page
from shipyard.schemas.components import ComponentRead, ComponentVersionRead, ComponentVersionUpdate
from shipyard.services.asset_versions import VersionedAssets
from shipyard.store.base import utcnow
from shipyard.store.components import ComponentRow, ComponentVersionRow
from shipyard.store.database import Database
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow


class ComponentCatalog:
    """``container`` below is the workspace's or the registry's name, as ``assets`` finds it."""

    def __init__(
        self, db: Database, assets: VersionedAssets[ComponentRow, ComponentVersionRow]
    ) -> None:
        self.db = db
        self.assets = assets

    def get(self, container: str, name: str, version: str) -> ComponentVersionRead:
        """A version, or with ``latest`` the newest one that is not archived."""
        with self.db.read() as session:
            component, row = self.assets.version(session, container, name, version)
            return self._reads(session, container, component.name, [row])[0]

    def list_assets(
        self,
        container: str,
        *,
        include_archived: bool = False,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> Page[ComponentRead]:
        """By name."""
        with self.db.read() as session:
            items, token = self.assets.summary_page(
                session,
                container,
                ComponentRead,
                include_archived=include_archived,
                page_token=page_token,
                max_results=max_results,
            )
        return Page[ComponentRead](items=items, next_page_token=token)

    def list_versions(
        self,
        container: str,
        name: str,
        *,
        include_archived: bool = False,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> Page[ComponentVersionRead]:
        """Newest first."""
        with self.db.read() as session:
            component = self.assets.asset(session, container, name)
            rows, token = self.assets.page_versions(
                session,
                component.id,
                include_archived=include_archived,
                page_token=page_token,
                max_results=max_results,
            )
            items = self._reads(session, container, component.name, rows)
        return Page[ComponentVersionRead](items=items, next_page_token=token)

    def update(
        self, container: str, name: str, version: str, body: ComponentVersionUpdate
    ) -> ComponentVersionRead:
        """Description and tags: the only parts of a version that change."""
        with self.db.write() as session:
            component, row = self.assets.version(session, container, name, version, labels=False)
            if "description" in body.model_fields_set:
                row.description = body.description
            if body.tags is not None:
                row.tags = body.tags
            row.updated_at = utcnow()
            session.flush()
            return self._reads(session, container, component.name, [row])[0]

    def set_archived(self, container: str, name: str, version: str | None, archived: bool) -> None:
        """Archive (hide from lists and from ``latest``) or restore a version, or with no
        version the whole component. Archived versions are still used by their version."""
        with self.db.write() as session:
            self.assets.set_archived(session, container, name, version, archived)

    def _reads(
        self, session: Session, container: str, name: str, rows: Sequence[ComponentVersionRow]
    ) -> list[ComponentVersionRead]:
        return version_reads(session, name, rows)


def version_reads(
    session: Session, name: str, rows: Sequence[ComponentVersionRow]
) -> list[ComponentVersionRead]:
    """Versions as the API shows them (a registry's component adds its own touches)."""
    users = names_of(session, UserRow, {row.created_by for row in rows})
    reads = []
    for row in rows:
        common: dict[str, Any] = {
            "name": name,
            "version": row.version,
            "description": row.description,
            "tags": row.tags,
            "definition_hash": row.definition_hash,
            "archived": row.archived,
            "created_by": users.get(row.created_by),
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
        spec: ComponentSpec | PipelineComponentSpec
        if is_pipeline_component(row.spec):
            spec = PipelineComponentSpec.from_json(row.spec)
            common.update(type="pipeline", jobs=spec.jobs)
        else:
            spec = ComponentSpec.from_json(row.spec)
            common.update(
                is_deterministic=spec.is_deterministic,
                command=spec.command,
                code=spec.code,
                environment=f"azureml:{row.environment}",
                resources=spec.resources,
                distribution=spec.distribution,
            )
        reads.append(
            ComponentVersionRead(
                display_name=spec.display_name,
                inputs={k: v.to_json() for k, v in spec.inputs.items()},
                outputs={k: v.to_json() for k, v in spec.outputs.items()},
                **common,
            )
        )
    return reads
