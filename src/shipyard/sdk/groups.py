"""``client.groups``: groups of users and service principals, which hold roles together."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from shipyard.schemas.groups import GroupRead
from shipyard.sdk.http import HttpSession

Group = GroupRead


def _path(name: str) -> str:
    return f"/api/v1/groups/{quote(name, safe='')}"


class GroupOperations:
    """Groups: a role assigned to a group holds for each of its members, from the next request.

    Whoever creates a group owns it; owners (and admins) add and remove members and owners.

    Example::

        client.groups.create("ml-team", description="The ML team")
        client.groups.add_member("ml-team", "alice")
        client.groups.add_member("ml-team", "bob", owner=True)   # bob may manage the group
        client.role_assignments.create(role="Reader", group="ml-team", workspace="churn")
        client.groups.remove_member("ml-team", "alice")          # alice loses it at once
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(self, name: str, description: str | None = None) -> Group:
        body = {"name": name, "description": description}
        return self._http.send_model("POST", "/api/v1/groups", Group, body)

    def get(self, name: str) -> Group:
        return self._http.get_model(_path(name), Group)

    def list(self, *, page_size: int | None = None) -> Iterator[Group]:
        """Every group, page after page."""
        return self._http.iterate("/api/v1/groups", Group, {"max_results": page_size})

    def add_member(self, group: str, name: str, owner: bool = False) -> Group:
        """Add a user or service principal as a member (``owner=True``: as an owner, who may
        manage the group; an owner is not a member and gets none of the group's roles)."""
        body = {"name": name, "relation": "owner" if owner else "member"}
        return self._http.send_model("POST", _path(group) + "/members", Group, body)

    def remove_member(self, group: str, name: str, owner: bool = False) -> Group:
        """Remove a member (``owner=True``: an owner); their access through the group ends at
        once."""
        response = self._http.request(
            "DELETE",
            f"{_path(group)}/members/{quote(name, safe='')}",
            params={"relation": "owner" if owner else "member"},
        )
        return Group.model_validate(response.json())

    def delete(self, name: str) -> None:
        """Delete a group and every role assignment it holds."""
        self._http.request("DELETE", _path(name))
