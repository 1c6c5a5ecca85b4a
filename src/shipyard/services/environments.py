"""Environments: versioned specs per workspace, curated ones, references, and builds.

A version is immutable apart from description, tags and the archived flag, like a data
asset's. The curated environments (``domain.environments.CURATED``) are defined in code and
appear in every workspace; Azure's curated names map onto them. Jobs pin their environment
at submit (``resolve`` / ``pin``: a reference becomes a name, a version and the spec itself)
and the launcher builds it while the job is Preparing (``ensure_built`` / ``prepare``),
through the server-wide builder (``compute.environments``), cached by spec hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.compute.environments import BuildRecord, BuiltEnvironment, EnvironmentBuilder
from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.environments import (
    ANONYMOUS_NAME,
    CURATED,
    ENVIRONMENT_NAME,
    LATEST,
    CuratedEnvironment,
    EnvironmentSpec,
    azure_curated,
    check_version_text,
    curated,
    is_reserved,
    parse_environment_ref,
    parse_spec,
)
from shipyard.domain.errors import (
    ConflictError,
    EnvironmentBuildError,
    InvalidInputError,
    NotFoundError,
)
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.environments import (
    BuildStatus,
    EnvironmentBuildRead,
    EnvironmentRead,
    EnvironmentVersionCreate,
    EnvironmentVersionRead,
    EnvironmentVersionUpdate,
)
from shipyard.services.asset_versions import VersionedAssets, is_number
from shipyard.services.authz import Authorizer
from shipyard.services.workspace_rows import live_workspace
from shipyard.store import environments as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.environments import EnvironmentRow, EnvironmentVersionRow
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow

_NAME = re.compile(ENVIRONMENT_NAME)
# Its list pages; the rest of what it shares with other versioned assets predates this.
ASSETS: VersionedAssets[EnvironmentRow, EnvironmentVersionRow] = VersionedAssets(
    "environment", EnvironmentRow, EnvironmentVersionRow, "environment_id"
)
CURATED_SINCE = datetime(2026, 1, 1, tzinfo=UTC)
BUILD_LOG_LINES = 100  # lines of the log a build request answers with
# Keys an inline environment (in a job) may have: the version's fields (name and version
# are ignored: an inline environment is registered under Azure's anonymous name).
_INLINE_KEYS = frozenset(
    {
        "$schema",
        "name",
        "version",
        "description",
        "tags",
        "python",
        "pip_requirements",
        "conda_file",
        "image",
        "build",
        "os_type",
        "inference_config",
    }
)


@dataclass(frozen=True)
class ResolvedEnvironment:
    """An environment reference pinned at submit: what a job will run in."""

    name: str
    version: str
    spec: EnvironmentSpec
    spec_hash: str
    curated: bool = False

    @property
    def ref(self) -> str:
        return f"azureml:{self.name}:{self.version}"

    def pinned(self) -> dict[str, Any]:
        """The JSON a job's stored spec keeps (``prepare`` builds from it)."""
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "spec": self.spec.to_json(),
            "spec_hash": self.spec_hash,
            "curated": self.curated,
        }


class Environments:
    def __init__(
        self,
        db: Database,
        builder: EnvironmentBuilder,
        authorizer: Authorizer,
        *,
        allow_pip_options: bool = False,
    ) -> None:
        self.db = db
        self.builder = builder
        self.authorizer = authorizer
        self.allow_pip_options = allow_pip_options

    # -- create -----------------------------------------------------------------------------

    def create(
        self, principal: Principal, workspace: str, name: str, body: EnvironmentVersionCreate
    ) -> EnvironmentVersionRead:
        _check_name(name)
        if is_reserved(name):
            raise ConflictError(
                f"{name!r} is reserved for curated environments (shipyard-*, and Azure's "
                "AzureML-* names, which map to them); choose another name",
                code="environment_name_reserved",
                field="name",
            )
        if body.version is not None:
            check_version_text(body.version)
        spec = parse_spec(
            python=body.python,
            pip_requirements=body.pip_requirements,
            conda_file=body.conda_file,
            image=body.image,
            build=body.build.model_dump() if body.build else None,
            os_type=body.os_type,
            allow_pip_options=self.allow_pip_options,
        )
        with self.db.read() as session:
            ws_id = live_workspace(session, workspace).id
        row = self._insert(
            principal.id,
            ws_id,
            name,
            body.version,
            spec,
            conda_file=body.conda_file,
            inference_config=body.inference_config,
            description=body.description,
            tags=body.tags,
        )
        with self.db.read() as session:
            return self._reads(session, name, [row])[0]

    def _insert(
        self,
        principal_id: str,
        workspace_id: str,
        name: str,
        version: str | None,
        spec: EnvironmentSpec,
        *,
        conda_file: dict[str, Any] | None = None,
        inference_config: dict[str, Any] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> EnvironmentVersionRow:
        for attempt in range(2):
            try:
                with self.db.write() as session:
                    env = store.get_environment(session, workspace_id, name)
                    if env is None:
                        env = EnvironmentRow(
                            workspace_id=workspace_id, name=name, created_by=principal_id
                        )
                        session.add(env)
                        session.flush()
                    number = int(version) if version and is_number(version) else None
                    issued, seq = store.bump_counters(
                        session, env.id, auto=version is None, number=number
                    )
                    chosen = version if version is not None else str(issued)
                    if store.get_version(session, env.id, chosen) is not None:
                        raise _version_exists(name, chosen)
                    now = utcnow()
                    row = EnvironmentVersionRow(
                        environment_id=env.id,
                        version=chosen,
                        seq=seq,
                        spec=spec.to_json(),
                        conda_file=conda_file,
                        inference_config=inference_config,
                        definition_hash=spec.definition_hash(),
                        description=description,
                        tags=tags or {},
                        created_by=principal_id,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                    session.flush()
                    return row
            except IntegrityError as exc:
                # A concurrent request made the environment (once more, to use it) or the
                # same version (then the retry finds it and says so).
                if attempt == 1:
                    raise _version_exists(name, version or "?") from exc
        raise AssertionError("unreachable")

    # -- read -------------------------------------------------------------------------------

    def get(self, workspace: str, name: str, version: str) -> EnvironmentVersionRead:
        """A version, or with ``latest`` the newest one that is not archived."""
        with self.db.read() as session:
            live_workspace(session, workspace)
            found = curated(name)
            if found is not None:
                if version not in (LATEST, found.version):
                    raise _no_version(name, version)
                return self._curated_read(session, found)
            env, row = _version(session, workspace, name, version)
            return self._reads(session, env.name, [row])[0]

    def list_assets(
        self,
        workspace: str,
        *,
        include_archived: bool = False,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> Page[EnvironmentRead]:
        """By name, the curated environments among them."""
        after = decode_page_token(page_token)
        with self.db.read() as session:
            items, token = ASSETS.summary_page(
                session,
                workspace,
                EnvironmentRead,
                include_archived=include_archived,
                page_token=page_token,
                max_results=max_results,
            )
        # Curated ones go where their names sort, within this page's range of names.
        more = token is not None
        upper = items[-1].name if more else None
        items += [
            _curated_asset(env)
            for env in CURATED
            if (after is None or env.name > after) and (upper is None or env.name <= upper)
        ]
        items.sort(key=lambda item: item.name)
        if len(items) > max_results:
            items, more = items[:max_results], True
        token = encode_page_token(items[-1].name) if more and items else None
        return Page[EnvironmentRead](items=items, next_page_token=token)

    def list_versions(
        self,
        workspace: str,
        name: str,
        *,
        include_archived: bool = False,
        page_token: str | None = None,
        max_results: int = 100,
    ) -> Page[EnvironmentVersionRead]:
        """Newest first."""
        after = decode_page_token(page_token)
        if after is not None and not after.isdigit():
            raise InvalidInputError(
                "page_token is not a token this server issued",
                code="invalid_page_token",
                field="page_token",
            )
        with self.db.read() as session:
            found = curated(name)
            if found is not None:
                live_workspace(session, workspace)
                items = [] if after is not None else [self._curated_read(session, found)]
                return Page[EnvironmentVersionRead](items=items)
            env = _environment(session, workspace, name)
            query = select(EnvironmentVersionRow).where(
                EnvironmentVersionRow.environment_id == env.id
            )
            if not include_archived:
                query = query.where(EnvironmentVersionRow.archived.is_(False))
            if after is not None:
                query = query.where(EnvironmentVersionRow.seq < int(after))
            query = query.order_by(EnvironmentVersionRow.seq.desc()).limit(max_results + 1)
            rows = list(session.scalars(query))
            items = self._reads(session, env.name, rows[:max_results])
        more = len(rows) > max_results
        token = encode_page_token(str(rows[max_results - 1].seq)) if more else None
        return Page[EnvironmentVersionRead](items=items, next_page_token=token)

    # -- change -----------------------------------------------------------------------------

    def update(
        self, workspace: str, name: str, version: str, body: EnvironmentVersionUpdate
    ) -> EnvironmentVersionRead:
        _refuse_curated(name)
        with self.db.write() as session:
            env, row = _version(session, workspace, name, version, labels=False)
            if "description" in body.model_fields_set:
                row.description = body.description
            if body.tags is not None:
                row.tags = body.tags
            row.updated_at = utcnow()
            session.flush()
            return self._reads(session, env.name, [row])[0]

    def set_archived(self, workspace: str, name: str, version: str | None, archived: bool) -> None:
        """Archive (hide from lists and from ``latest``) or restore a version, or with no
        version the whole environment. Archived versions are still read by their version."""
        _refuse_curated(name)
        with self.db.write() as session:
            if version is None:
                env = _environment(session, workspace, name)
                env.archived = archived
                env.updated_at = utcnow()
                return
            _, row = _version(session, workspace, name, version, labels=False)
            row.archived = archived
            row.updated_at = utcnow()

    # -- builds -----------------------------------------------------------------------------

    def build(self, workspace: str, name: str, version: str) -> EnvironmentBuildRead:
        """Build a version now (or find it built): its build's status, whether it was
        cached, and the end of its log. A failed build answers ``failed`` with its log."""
        read = self.get(workspace, name, version)
        spec = _spec_of(read)
        self.builder.check_buildable(spec)
        try:
            cached: bool | None = self.builder.ensure(spec).cached
        except EnvironmentBuildError:
            cached = False
        record = self.builder.status(read.spec_hash)
        return _build_read(read, record, cached=cached, lines=BUILD_LOG_LINES)

    def build_status(self, workspace: str, name: str, version: str) -> EnvironmentBuildRead:
        read = self.get(workspace, name, version)
        return _build_read(read, self.builder.status(read.spec_hash), cached=None, lines=None)

    # -- what jobs use ----------------------------------------------------------------------

    def resolve(
        self,
        principal: Principal,
        workspace: str,
        ref: str | dict[str, Any],
        *,
        field: str = "environment",
    ) -> ResolvedEnvironment:
        """Pin a job's environment: a reference (``azureml:name:version``, ``name@latest``,
        ``azureml://registries/azureml/environments/<name>/labels/latest`` for curated
        ones, Azure's curated names) or an inline spec (registered as Azure's anonymous
        environment, versioned by its hash). 4xx naming ``field`` when it cannot be."""
        if isinstance(ref, dict):
            return self._inline(principal, workspace, ref, field)
        if not isinstance(ref, str):
            raise InvalidInputError(
                "must be a reference (azureml:<name>:<version>) or a mapping",
                code="invalid_reference",
                field=field,
            )
        parsed = parse_environment_ref(ref, field=field)
        self.authorizer.authorize(principal, actions.ENVIRONMENTS_READ, workspace_scope(workspace))
        if parsed.registry is not None and parsed.registry.lower() != "azureml":
            raise NotFoundError(
                f"registry {parsed.registry[:100]!r} does not exist (only Azure's curated "
                "environments, azureml://registries/azureml/..., resolve)",
                code="registry_not_found",
                field=field,
            )
        found = curated(parsed.name) or azure_curated(
            parsed.name, field=field, registry=parsed.registry is not None
        )
        if found is not None:
            # Azure's versions of its curated environments have no meaning here: any maps.
            if parsed.name == found.name and parsed.version not in (None, found.version):
                raise _no_version(parsed.name, parsed.version or "", field=field)
            return self._resolved(found.name, found.version, found.spec, field, curated=True)
        if parsed.registry is not None:
            raise NotFoundError(
                f"{ref[:200]!r}: the azureml registry has no such curated environment",
                code="environment_not_found",
                field=field,
            )
        with self.db.read() as session:
            try:
                env, row = _version(session, workspace, parsed.name, parsed.version or LATEST)
            except NotFoundError as exc:
                raise NotFoundError(exc.detail, code=exc.code, field=field) from exc
            spec = EnvironmentSpec.from_json(row.spec)
            return self._resolved(env.name, row.version, spec, field)

    def ensure_built(
        self, resolved: ResolvedEnvironment, log: Callable[[str], None] | None = None
    ) -> BuiltEnvironment:
        """Build (or find built) a pinned environment; EnvironmentBuildError on failure."""
        return self.builder.ensure(resolved.spec, log)

    def pin(
        self, principal: Principal, workspace: str, ref: str | dict[str, Any]
    ) -> dict[str, Any]:
        """``resolve`` as the JSON a job's stored spec keeps (the job service's pinner)."""
        return self.resolve(principal, workspace, ref).pinned()

    def prepare(self, pinned: dict[str, Any], log: Callable[[str], None]) -> BuiltEnvironment:
        """Build what ``pin`` returned (the launcher's provider). Raises
        EnvironmentBuildError with the log's end on failure."""
        return self.builder.ensure(EnvironmentSpec.from_json(pinned["spec"]), log)

    def hold(self, pinned: dict[str, Any]) -> AbstractContextManager[None]:
        """Keep a pinned environment's build from being evicted while a job runs in it."""
        spec = EnvironmentSpec.from_json(pinned["spec"])
        return self.builder.hold(self.builder.spec_hash(spec))

    # -- helpers ----------------------------------------------------------------------------

    def _inline(
        self, principal: Principal, workspace: str, ref: dict[str, Any], field: str
    ) -> ResolvedEnvironment:
        for key in ref:
            if key not in _INLINE_KEYS:
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
            allow_pip_options=self.allow_pip_options,
            prefix=f"{field}.",
        )
        self.builder.check_buildable(spec, field)
        version = spec.definition_hash()
        with self.db.read() as session:
            ws_id = live_workspace(session, workspace).id
            env = store.get_environment(session, ws_id, ANONYMOUS_NAME)
            known = env is not None and store.get_version(session, env.id, version) is not None
        if not known:
            try:
                conda = ref.get("conda_file") if isinstance(ref.get("conda_file"), dict) else None
                self._insert(principal.id, ws_id, ANONYMOUS_NAME, version, spec, conda_file=conda)
            except ConflictError:
                pass  # registered meanwhile by an identical submit
        return self._resolved(ANONYMOUS_NAME, version, spec, field)

    def _resolved(
        self, name: str, version: str, spec: EnvironmentSpec, field: str, *, curated: bool = False
    ) -> ResolvedEnvironment:
        self.builder.check_buildable(spec, field)
        return ResolvedEnvironment(name, version, spec, self.builder.spec_hash(spec), curated)

    def _reads(
        self, session: Session, name: str, rows: Sequence[EnvironmentVersionRow]
    ) -> list[EnvironmentVersionRead]:
        users = names_of(session, UserRow, {row.created_by for row in rows})
        specs = [EnvironmentSpec.from_json(row.spec) for row in rows]
        hashes = [self.builder.spec_hash(spec) for spec in specs]
        statuses = store.builds_status(session, hashes)
        return [
            _version_read(
                name,
                row.version,
                spec,
                digest,
                statuses.get(digest, "not_built"),
                description=row.description,
                tags=row.tags,
                conda_file=row.conda_file,
                inference_config=row.inference_config,
                archived=row.archived,
                created_by=users.get(row.created_by),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row, spec, digest in zip(rows, specs, hashes, strict=True)
        ]

    def _curated_read(self, session: Session, env: CuratedEnvironment) -> EnvironmentVersionRead:
        digest = self.builder.spec_hash(env.spec)
        status = store.builds_status(session, [digest]).get(digest, "not_built")
        return _version_read(
            env.name,
            env.version,
            env.spec,
            digest,
            status,
            description=env.description,
            curated=True,
            created_at=CURATED_SINCE,
            updated_at=CURATED_SINCE,
        )


def _version_read(
    name: str,
    version: str,
    spec: EnvironmentSpec,
    digest: str,
    status: str,
    **fields: Any,
) -> EnvironmentVersionRead:
    build = spec.to_json()["build"]
    return EnvironmentVersionRead(
        name=name,
        version=version,
        python=spec.python,
        pip_requirements=list(spec.pip),
        image=spec.image,
        build=build,
        os_type=spec.os_type,
        spec_hash=digest,
        build_status=cast(BuildStatus, status),
        **fields,
    )


def _curated_asset(env: CuratedEnvironment) -> EnvironmentRead:
    return EnvironmentRead(
        name=env.name,
        latest_version=env.version,
        description=env.description,
        curated=True,
        created_at=CURATED_SINCE,
        updated_at=CURATED_SINCE,
    )


def _spec_of(read: EnvironmentVersionRead) -> EnvironmentSpec:
    return EnvironmentSpec.from_json(
        {
            "python": read.python,
            "pip": read.pip_requirements,
            "image": read.image,
            "build": read.build,
            "os_type": read.os_type,
        }
    )


def _build_read(
    read: EnvironmentVersionRead, record: BuildRecord, *, cached: bool | None, lines: int | None
) -> EnvironmentBuildRead:
    log = record.log if lines is None else "\n".join(record.log.splitlines()[-lines:])
    return EnvironmentBuildRead(
        name=read.name,
        version=read.version,
        spec_hash=record.spec_hash,
        status=cast(BuildStatus, record.status),
        cached=cached,
        python=record.python,
        size=record.size,
        error=record.error,
        log=log,
        created_at=record.created_at,
        built_at=record.built_at,
        last_used_at=record.last_used_at,
        build_seconds=record.build_seconds,
    )


def _version(
    session: Session, workspace: str, name: str, version: str, *, labels: bool = True
) -> tuple[EnvironmentRow, EnvironmentVersionRow]:
    env = _environment(session, workspace, name)
    if labels and version == LATEST:
        row = store.latest_version(session, env.id)
    else:
        row = store.get_version(session, env.id, version)
    if row is None:
        raise _no_version(name, version)
    return env, row


def _no_version(name: str, version: str, *, field: str = "version") -> NotFoundError:
    which = "no version that is not archived" if version == LATEST else f"no version {version!r}"
    return NotFoundError(
        f"environment {name[:255]!r} has {which}",
        code="environment_version_not_found",
        field=field,
    )


def _refuse_curated(name: str) -> None:
    if curated(name) is not None:
        raise ConflictError(
            f"{name!r} is a curated environment: it cannot be changed or archived",
            code="curated_environment",
            field="name",
        )


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"environment name {name[:100]!r} is invalid: letters, digits, '-', '_' and '.', "
            "starting with a letter or digit, at most 255 characters",
            code="invalid_name",
            field="name",
        )


def _version_exists(name: str, version: str) -> ConflictError:
    return ConflictError(
        f"version {version} of environment {name!r} exists; versions are immutable: give "
        "another version, or omit it for the next number",
        code="environment_version_exists",
        field="version",
    )


def _environment(session: Session, workspace: str, name: str) -> EnvironmentRow:
    ws = live_workspace(session, workspace)
    row = store.get_environment(session, ws.id, name)
    if row is None:
        raise NotFoundError(
            f"environment {name[:255]!r} does not exist",
            code="environment_not_found",
            field="name",
        )
    return row
