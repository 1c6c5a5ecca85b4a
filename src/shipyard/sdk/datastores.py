"""``ws.datastores``: a workspace's connections to storage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.datastores import DATASTORE_NAME, DatastoreRead, DatastoreSecretsRead
from shipyard.sdk.http import HttpSession

Datastore = DatastoreRead
DatastoreSecrets = DatastoreSecretsRead
_UNSET: Any = object()


class DatastoreOperations:
    """Create, read, update and delete a workspace's datastores.

    Every workspace has ``workspaceblobstore`` (its own storage, the default until another
    datastore is made the default). A datastore's keys are kept in the workspace's key vault:
    ``get`` and ``list`` never return them; ``list_secrets`` does, needs
    ``workspaces/datastores/listSecrets/action`` (Owner and Contributor by default) and is
    recorded in the audit log.

    Example::

        ws = client.workspace("churn")
        ws.datastores.create(
            "raw",
            type="s3",
            bucket="churn-raw",
            endpoint_url="http://minio.internal:9000",
            credentials={"access_key_id": key_id, "secret_access_key": secret},
            read_only=True,
        )
        ws.datastores.create("scratch", type="local", path="/srv/team-data/scratch")
        ws.datastores.set_default("scratch")
        print([d.name for d in ws.datastores.list()])
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/datastores"

    def _path(self, name: str) -> str:
        # Checked here too: a name such as ".." would otherwise be resolved away by the URL
        # and the request would land on the workspace itself.
        if not DATASTORE_NAME.fullmatch(name):
            raise InvalidInputError(
                f"a datastore name must match {DATASTORE_NAME.pattern}",
                code="invalid_name",
                field="name",
            )
        return f"{self._root}/{quote(name, safe='')}"

    @staticmethod
    def _params(skip_validation: bool) -> dict[str, str] | None:
        return {"skip_validation": "true"} if skip_validation else None

    def create(
        self,
        name: str,
        *,
        type: str,  # the YAML's own field name
        description: str | None = None,
        tags: dict[str, str] | None = None,
        read_only: bool = False,
        path: str | None = None,
        bucket: str | None = None,
        prefix: str | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials: dict[str, Any] | None = None,
        skip_validation: bool = False,
    ) -> Datastore:
        """Create a datastore; the server lists it first to check that it answers and the
        credentials work (``skip_validation=True`` to skip that)."""
        spec: dict[str, Any] = {"name": name, "type": type, "read_only": read_only}
        optional = {
            "description": description,
            "tags": tags,
            "path": path,
            "bucket": bucket,
            "prefix": prefix,
            "endpoint_url": endpoint_url,
            "region": region,
            "credentials": credentials,
        }
        spec.update({k: v for k, v in optional.items() if v is not None})
        return self.create_from_spec(spec, skip_validation=skip_validation)

    def create_from_spec(self, spec: dict[str, Any], *, skip_validation: bool = False) -> Datastore:
        """Create from a mapping shaped like the datastore YAML (what the CLI sends)."""
        response = self._http.request(
            "POST", self._root, json=spec, params=self._params(skip_validation)
        )
        return Datastore.model_validate(response.json())

    def get(self, name: str) -> Datastore:
        """One datastore: where it points and how it signs in, never its keys."""
        return self._http.get_model(self._path(name), Datastore)

    def list(self, *, page_size: int | None = None) -> Iterator[Datastore]:
        """``workspaceblobstore`` first, then the others by name, page after page."""
        return self._http.iterate(self._root, Datastore, {"max_results": page_size})

    def update(
        self,
        name: str,
        *,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
        read_only: bool | None = _UNSET,
        credentials: dict[str, Any] | None = _UNSET,
        skip_validation: bool = False,
    ) -> Datastore:
        """Change only the fields given; ``tags`` replaces all tags; new ``credentials`` are
        checked like a create's (``None``: the server's own, where allowed)."""
        given = {
            "description": description,
            "tags": tags,
            "read_only": read_only,
            "credentials": credentials,
        }
        changes = {k: v for k, v in given.items() if v is not _UNSET}
        return self.update_from_spec(name, changes, skip_validation=skip_validation)

    def update_from_spec(
        self, name: str, changes: dict[str, Any], *, skip_validation: bool = False
    ) -> Datastore:
        response = self._http.request(
            "PATCH", self._path(name), json=changes, params=self._params(skip_validation)
        )
        return Datastore.model_validate(response.json())

    def delete(self, name: str) -> None:
        """Delete a datastore (never the data it points at); keys it kept go with it."""
        self._http.request("DELETE", self._path(name))

    def set_default(self, name: str) -> Datastore:
        """Make ``name`` the workspace's default datastore."""
        return self._http.send_model("POST", self._path(name) + "/set-default", Datastore)

    def get_default(self) -> Datastore:
        return next(d for d in self.list() if d.is_default)

    def list_secrets(self, name: str) -> DatastoreSecrets:
        """The datastore's keys (an audited read)."""
        return self._http.send_model("POST", self._path(name) + "/list-secrets", DatastoreSecrets)

    def __repr__(self) -> str:
        return f"DatastoreOperations({self._root!r})"
