"""``ws.secrets``: a workspace's key vault."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.secrets import SECRET_NAME, SecretRead, SecretValueRead
from shipyard.sdk.http import HttpSession

Secret = SecretRead


class SecretOperations:
    """Set, list, read and delete a workspace's secrets.

    Values are encrypted at rest on the server. ``list`` and ``get`` return names and dates
    only (``workspaces/secrets/metadata/read``); ``get_value`` returns the value and needs
    ``workspaces/secrets/read`` (Owner and Contributor by default). Every ``get_value`` is
    recorded in the audit log.

    Example::

        ws = client.workspace("churn")
        ws.secrets.set("warehouse-password", os.environ["WAREHOUSE_PASSWORD"])
        print([s.name for s in ws.secrets.list()])
        password = ws.secrets.get_value("warehouse-password")
        ws.secrets.delete("warehouse-password")
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/secrets"

    def _path(self, name: str) -> str:
        # Checked here too: a name such as ".." would otherwise be resolved away by the URL
        # and the request would land on the workspace itself.
        if not SECRET_NAME.fullmatch(name):
            raise InvalidInputError(
                f"a secret name must match {SECRET_NAME.pattern}", code="invalid_name", field="name"
            )
        return f"{self._root}/{quote(name, safe='')}"

    def set(self, name: str, value: str) -> Secret:
        """Create the secret, or replace its value; returns its metadata (never the value)."""
        return self._http.send_model("PUT", self._path(name), Secret, {"value": value})

    def list(self, *, page_size: int | None = None) -> Iterator[Secret]:
        """Every secret's name and dates, in name order, page after page."""
        return self._http.iterate(self._root, Secret, {"max_results": page_size})

    def get(self, name: str) -> Secret:
        """One secret's metadata (never its value)."""
        return self._http.get_model(self._path(name), Secret)

    def get_value(self, name: str) -> str:
        """The secret's value (an audited read)."""
        return self._http.send_model("POST", self._path(name) + "/reveal", SecretValueRead).value

    def delete(self, name: str) -> None:
        self._http.request("DELETE", self._path(name))

    def __repr__(self) -> str:
        return f"SecretOperations({self._root!r})"
