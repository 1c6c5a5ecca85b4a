"""What versioned assets share: immutable versions, automatic numbers, ``latest``, archiving.

An asset row (``workspace_id``, ``name``, ``archived``, ``last_number``, ``version_count``,
``created_by``, ``created_at``, ``updated_at``) owns version rows (a foreign key to it,
``version``, ``seq``, ``archived``, ``updated_at``). The rules, as for data assets:

- a version is immutable; creating one that exists is a 409;
- an omitted version takes the next number: one more than the highest plain number any
  version used (``last_number``); ``seq`` is the creation order;
- ``latest`` is the most recently created version that is not archived;
- both counters move in one ``UPDATE ... RETURNING`` on the asset row, so concurrent creates
  take turns; a create that loses a race on a new asset's row retries once.

``VersionedAssets`` holds these for one pair of row classes (components use all of it; data
assets and environments predate it and use its list pages, keeping their own copies of the
other queries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.services.workspace_rows import live_workspace
from shipyard.store.base import Base, utcnow
from shipyard.store.database import Database
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow

LATEST = "latest"
A = TypeVar("A", bound=Base)
V = TypeVar("V", bound=Base)
R = TypeVar("R")


@dataclass(frozen=True)
class VersionedAssets(Generic[A, V]):
    noun: str  # "component": in messages and error codes (component_not_found...)
    asset_row: type[A]
    version_row: type[V]
    parent: str  # the version row's column that names its asset ("component_id")

    # The row classes' columns, untyped: each pair declares the same names.
    @property
    def _a(self) -> Any:
        return self.asset_row

    @property
    def _v(self) -> Any:
        return self.version_row

    @property
    def _parent(self) -> Any:
        return getattr(self.version_row, self.parent)

    # -- finding ----------------------------------------------------------------------------

    def find(self, session: Session, workspace_id: str, name: str) -> A | None:
        query = select(self.asset_row).where(
            self._a.workspace_id == workspace_id, self._a.name == name
        )
        return session.scalars(query).one_or_none()

    def find_version(self, session: Session, asset_id: str, version: str) -> V | None:
        query = select(self.version_row).where(self._parent == asset_id, self._v.version == version)
        return session.scalars(query).one_or_none()

    def latest(self, session: Session, asset_id: str) -> V | None:
        """The most recently created version that is not archived."""
        query = (
            select(self.version_row)
            .where(self._parent == asset_id, self._v.archived.is_(False))
            .order_by(self._v.seq.desc())
            .limit(1)
        )
        return session.scalars(query).one_or_none()

    def asset(self, session: Session, workspace: str, name: str) -> A:
        """The asset by name in a live workspace; 404 naming ``name`` otherwise."""
        row = self.find(session, live_workspace(session, workspace).id, name)
        if row is None:
            raise NotFoundError(
                f"{self.noun} {name[:255]!r} does not exist",
                code=f"{self.noun}_not_found",
                field="name",
            )
        return row

    def version(
        self, session: Session, workspace: str, name: str, version: str, *, labels: bool = True
    ) -> tuple[A, V]:
        """A version, or (with ``labels``) ``latest``; 404 naming ``version`` otherwise."""
        asset = self.asset(session, workspace, name)
        asset_id = str(self._a_id(asset))
        if labels and version == LATEST:
            row = self.latest(session, asset_id)
        else:
            row = self.find_version(session, asset_id, version)
        if row is None:
            raise self.no_version(name, version)
        return asset, row

    def no_version(self, name: str, version: str, *, field: str = "version") -> NotFoundError:
        which = (
            "no version that is not archived" if version == LATEST else f"no version {version!r}"
        )
        return NotFoundError(
            f"{self.noun} {name[:255]!r} has {which}",
            code=f"{self.noun}_version_not_found",
            field=field,
        )

    def latest_numbers(self, session: Session, asset_ids: Sequence[str]) -> dict[str, str]:
        """asset id -> the version ``latest`` names."""
        if not asset_ids:
            return {}
        newest = (
            select(self._parent.label("asset_id"), func.max(self._v.seq).label("seq"))
            .where(self._parent.in_(asset_ids), self._v.archived.is_(False))
            .group_by(self._parent)
            .subquery()
        )
        query = select(self._parent, self._v.version).join(
            newest, (newest.c.asset_id == self._parent) & (newest.c.seq == self._v.seq)
        )
        return {str(asset_id): str(version) for asset_id, version in session.execute(query)}

    # -- creating ---------------------------------------------------------------------------

    def insert(
        self,
        db: Database,
        workspace_id: str,
        principal_id: str,
        name: str,
        version: str | None,
        make: Callable[[str, str, int], V],
    ) -> V:
        """Create a version (``version`` None: the next number) with ``make(asset id,
        version, seq)``, creating the asset on its first version."""
        for attempt in range(2):
            try:
                with db.write() as session:
                    asset = self.find(session, workspace_id, name)
                    if asset is None:
                        asset = self.asset_row(
                            workspace_id=workspace_id, name=name, created_by=principal_id
                        )
                        session.add(asset)
                        session.flush()
                    asset_id = str(self._a_id(asset))
                    number = int(version) if version is not None and is_number(version) else None
                    issued, seq = self._bump(session, asset_id, auto=version is None, number=number)
                    chosen = version if version is not None else str(issued)
                    if self.find_version(session, asset_id, chosen) is not None:
                        raise self.version_exists(name, chosen)
                    row = make(asset_id, chosen, seq)
                    session.add(row)
                    session.flush()
                    return row
            except IntegrityError as exc:
                # A concurrent request made the asset (once more, to use it) or the same
                # version (then the retry finds it and says so).
                if attempt == 1:
                    raise self.version_exists(name, version or "?") from exc
        raise AssertionError("unreachable")

    def version_exists(self, name: str, version: str) -> ConflictError:
        return ConflictError(
            f"version {version} of {self.noun} {name!r} exists; versions are immutable: give "
            "another version, or omit it for the next number",
            code=f"{self.noun}_version_exists",
            field="version",
        )

    def _bump(
        self, session: Session, asset_id: str, *, auto: bool, number: int | None
    ) -> tuple[int, int]:
        """(the last number issued, the new version's seq)."""
        last = self._a.last_number
        new_last: Any = last
        if auto:
            new_last = last + 1
        elif number is not None:
            new_last = case((last < number, number), else_=last)
        statement = (
            update(self.asset_row)
            .where(self._a.id == asset_id)
            .values(
                last_number=new_last, version_count=self._a.version_count + 1, updated_at=utcnow()
            )
            .returning(self._a.last_number, self._a.version_count)
            .execution_options(synchronize_session=False)
        )
        issued, seq = session.execute(statement).one()
        return int(issued), int(seq)

    # -- lists ------------------------------------------------------------------------------

    def page_assets(
        self,
        session: Session,
        workspace: str,
        *,
        include_archived: bool,
        page_token: str | None,
        max_results: int,
    ) -> tuple[list[A], str | None]:
        """A page of the workspace's assets, by name."""
        after = decode_page_token(page_token)
        query = select(self.asset_row).where(
            self._a.workspace_id == live_workspace(session, workspace).id
        )
        if not include_archived:
            query = query.where(self._a.archived.is_(False))
        if after is not None:
            query = query.where(self._a.name > after)
        rows = list(session.scalars(query.order_by(self._a.name).limit(max_results + 1)))
        more = len(rows) > max_results
        rows = rows[:max_results]
        return rows, encode_page_token(str(self._a_name(rows[-1]))) if more else None

    def summary_page(
        self,
        session: Session,
        container: str,
        read: Callable[..., R],
        *,
        include_archived: bool,
        page_token: str | None,
        max_results: int,
    ) -> tuple[list[R], str | None]:
        """A page of assets (``page_assets``) as a list shows each: its name, the version
        ``latest`` names, whether it is archived, who made it and when."""
        rows, token = self.page_assets(
            session,
            container,
            include_archived=include_archived,
            page_token=page_token,
            max_results=max_results,
        )
        assets: list[Any] = list(rows)
        latest = self.latest_numbers(session, [str(row.id) for row in assets])
        users = names_of(session, UserRow, {row.created_by for row in assets})
        return [
            read(
                name=row.name,
                latest_version=latest.get(str(row.id)),
                archived=row.archived,
                created_by=users.get(row.created_by),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in assets
        ], token

    def page_versions(
        self,
        session: Session,
        asset_id: str,
        *,
        include_archived: bool,
        page_token: str | None,
        max_results: int,
    ) -> tuple[list[V], str | None]:
        """A page of an asset's versions, newest first."""
        after = decode_page_token(page_token)
        if after is not None and not after.isdigit():
            raise InvalidInputError(
                "page_token is not a token this server issued",
                code="invalid_page_token",
                field="page_token",
            )
        query = select(self.version_row).where(self._parent == asset_id)
        if not include_archived:
            query = query.where(self._v.archived.is_(False))
        if after is not None:
            query = query.where(self._v.seq < int(after))
        rows = list(session.scalars(query.order_by(self._v.seq.desc()).limit(max_results + 1)))
        more = len(rows) > max_results
        rows = rows[:max_results]
        return rows, encode_page_token(str(self._v_seq(rows[-1]))) if more else None

    # -- archiving --------------------------------------------------------------------------

    def set_archived(
        self, session: Session, workspace: str, name: str, version: str | None, archived: bool
    ) -> None:
        """Archive (hide from lists and from ``latest``) or restore a version, or with no
        version the whole asset. Archived versions are still read by their version."""
        target: Any
        if version is None:
            target = self.asset(session, workspace, name)
        else:
            target = self.version(session, workspace, name, version, labels=False)[1]
        target.archived = archived
        target.updated_at = utcnow()

    # Attribute reads on rows of either class (mypy sees only ``Base``).
    @staticmethod
    def _a_id(row: Any) -> str:
        return str(row.id)

    @staticmethod
    def _a_name(row: Any) -> str:
        return str(row.name)

    @staticmethod
    def _v_seq(row: Any) -> int:
        return int(row.seq)


def is_number(version: str) -> bool:
    """Plain decimal numbers count toward the next automatic version; "007" or "1.0" do not."""
    return version.isdigit() and str(int(version)) == version and len(version) < 10
