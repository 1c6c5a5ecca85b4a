"""``ws.computes``: where a workspace's jobs run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.computes import COMPUTE_NAME, ComputeRead
from shipyard.sdk.http import HttpSession

Compute = ComputeRead


class ComputeOperations:
    """Create, read and delete a workspace's compute targets.

    Every workspace has ``local`` (the server's own host), listed first. Others are Ray
    clusters by the address of their dashboard; Azure's ``amlcompute`` shape is accepted
    and mapped onto the Ray cluster (see docs/compute.md). Creating and deleting needs
    ``workspaces/computes/write`` and ``/delete`` (Owner, Contributor, Compute Operator).

    Example::

        ws = client.workspace("churn")
        ws.computes.create(
            "ray-cpu", address="http://ray-head:8265", cost={"rate": 0.05, "unit": "core"}
        )
        ws.jobs.create(command(command="python train.py", code="./src", compute="ray-cpu"))
        print([(c.name, c.type) for c in ws.computes.list()])
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = f"/api/v1/workspaces/{quote(workspace, safe='')}/computes"

    def _path(self, name: str) -> str:
        # Checked here too: a name such as ".." would be resolved away by the URL.
        if not COMPUTE_NAME.fullmatch(name):
            raise InvalidInputError(
                f"a compute name must match {COMPUTE_NAME.pattern}",
                code="invalid_name",
                field="name",
            )
        return f"{self._root}/{quote(name, safe='')}"

    def create(
        self,
        name: str,
        *,
        address: str,
        type: str = "ray",  # the YAML's own field name
        description: str | None = None,
        tags: dict[str, str] | None = None,
        cost: dict[str, Any] | None = None,
        skip_validation: bool = False,
        **azure: Any,
    ) -> Compute:
        """Create a compute target; the server asks the cluster for its version first
        (``skip_validation=True`` to leave that out). ``cost`` is ``{"rate": 0.12, "unit":
        "core"}`` (per core-hour) or ``"node"`` (per node-hour); Azure's amlcompute fields
        (``min_instances``...) go in as keywords."""
        spec: dict[str, Any] = {"name": name, "type": type, "address": address, **azure}
        optional = {"description": description, "tags": tags, "cost": cost}
        spec.update({k: v for k, v in optional.items() if v is not None})
        return self.create_from_spec(spec, skip_validation=skip_validation)

    def create_from_spec(self, spec: dict[str, Any], *, skip_validation: bool = False) -> Compute:
        """Create from a mapping shaped like the compute YAML (what the CLI sends)."""
        params = {"skip_validation": "true"} if skip_validation else None
        response = self._http.request("POST", self._root, json=spec, params=params)
        return Compute.model_validate(response.json())

    def get(self, name: str) -> Compute:
        return self._http.get_model(self._path(name), Compute)

    def list(self, *, page_size: int | None = None) -> Iterator[Compute]:
        """``local`` first, then the others by name, page after page."""
        return self._http.iterate(self._root, Compute, {"max_results": page_size})

    def delete(self, name: str) -> None:
        """Delete a compute target (never the cluster itself); refused while jobs are
        queued or running on it."""
        self._http.request("DELETE", self._path(name))

    def __repr__(self) -> str:
        return f"ComputeOperations({self._root!r})"
