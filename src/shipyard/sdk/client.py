"""``Client``: the entry point of the SDK."""

from __future__ import annotations

import os
from types import TracebackType

from shipyard._version import __version__
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.audit import AuditOperations
from shipyard.sdk.groups import GroupOperations
from shipyard.sdk.http import HttpSession
from shipyard.sdk.profile import load_profile
from shipyard.sdk.registries import RegistryHandle, RegistryOperations
from shipyard.sdk.role_assignments import RoleAssignmentOperations
from shipyard.sdk.roles import RoleOperations
from shipyard.sdk.service_principals import ServicePrincipalOperations
from shipyard.sdk.users import TokenOperations, UserOperations
from shipyard.sdk.workspaces import WorkspaceHandle, WorkspaceOperations


class Client:
    """A connection to a Shipyard server.

    ``url`` and ``token`` fall back to ``SHIPYARD_URL`` / ``SHIPYARD_TOKEN``, then to the
    profile ``shipyard login`` saved.

    Example::

        from shipyard import Client
        client = Client("http://127.0.0.1:8765", token="shp_...")
        client.workspaces.create(name="churn")
        ws = client.workspace("churn")
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        profile: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        # Explicit arguments need no profile: a damaged config file must not break them.
        saved = None if url and token else load_profile(profile)
        url = url or os.environ.get("SHIPYARD_URL") or (saved.url if saved else None)
        # The saved token belongs to the saved URL: never send it to another server.
        saved_token = (
            saved.token if saved and saved.url.rstrip("/") == (url or "").rstrip("/") else None
        )
        token = token or os.environ.get("SHIPYARD_TOKEN") or saved_token
        if not url:
            raise InvalidInputError(
                "no server URL: pass url=, set SHIPYARD_URL, or run `shipyard login`",
                code="no_server_url",
                field="url",
            )
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"server URL {url!r} must start with http:// or https://",
                code="invalid_url",
                field="url",
            )
        self.url = url.rstrip("/")
        self._http = HttpSession(
            self.url, token, timeout=timeout, user_agent=f"shipyard-sdk/{__version__}"
        )
        self.workspaces = WorkspaceOperations(self._http)
        self.users = UserOperations(self._http)
        self.tokens = TokenOperations(self._http)
        self.groups = GroupOperations(self._http)
        self.service_principals = ServicePrincipalOperations(self._http)
        self.roles = RoleOperations(self._http)
        self.role_assignments = RoleAssignmentOperations(self._http)
        self.audit = AuditOperations(self._http)
        self.registries = RegistryOperations(self._http)

    def workspace(self, name: str) -> WorkspaceHandle:
        return WorkspaceHandle(self._http, name)

    def registry(self, name: str) -> RegistryHandle:
        return RegistryHandle(self._http, name)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"
