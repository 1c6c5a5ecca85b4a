"""``client.service_principals``: non-human identities for automation and CI."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from shipyard.schemas.groups import ServicePrincipalRead
from shipyard.sdk.http import HttpSession

ServicePrincipal = ServicePrincipalRead


def _path(name: str) -> str:
    return f"/api/v1/service-principals/{quote(name, safe='')}"


class ServicePrincipalOperations:
    """Service principals sign in with tokens like users do; give them roles like users.

    Example::

        client.service_principals.create("ci-bot", description="Nightly training")
        client.role_assignments.create(
            role="Data Scientist", service_principal="ci-bot", workspace="churn"
        )
        token = client.tokens.create("ci", user="ci-bot", expires_in=30).token
        client.service_principals.delete("ci-bot")   # its tokens stop working at once
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(self, name: str, description: str | None = None) -> ServicePrincipal:
        body = {"name": name, "description": description}
        return self._http.send_model("POST", "/api/v1/service-principals", ServicePrincipal, body)

    def get(self, name: str) -> ServicePrincipal:
        return self._http.get_model(_path(name), ServicePrincipal)

    def list(self, *, page_size: int | None = None) -> Iterator[ServicePrincipal]:
        """Every service principal, page after page."""
        params = {"max_results": page_size}
        return self._http.iterate("/api/v1/service-principals", ServicePrincipal, params)

    def delete(self, name: str) -> None:
        """Delete the identity with its tokens, group memberships and role assignments."""
        self._http.request("DELETE", _path(name))
