"""``ws.experiments``: the named groups runs are logged into."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from shipyard.schemas.tracking import ExperimentRead
from shipyard.sdk.http import HttpSession

Experiment = ExperimentRead


class ExperimentOperations:
    """Create, read, rename, tag, delete and restore a workspace's experiments.

    ``ws.start_run(experiment="churn")`` creates its experiment when it does not exist yet, so
    creating one first is only needed to give it tags.

    Example::

        ws.experiments.create("churn", tags={"team": "growth"})
        for e in ws.experiments.list():
            print(e.name, e.tags)
        ws.experiments.delete("churn")    # hidden; ws.experiments.restore("churn") brings it back
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._base = f"/api/v1/workspaces/{quote(workspace, safe='')}/experiments"

    def _path(self, name: str) -> str:
        return f"{self._base}/{quote(name, safe='')}"

    def create(self, name: str, *, tags: dict[str, str] | None = None) -> Experiment:
        body = {"name": name, "tags": tags or {}}
        return self._http.send_model("POST", self._base, Experiment, body)

    def get(self, name: str) -> Experiment:
        return self._http.get_model(self._path(name), Experiment)

    def list(self, *, deleted: bool = False, page_size: int | None = None) -> Iterator[Experiment]:
        """Every experiment, page after page (``deleted=True``: the deleted ones)."""
        params = {"deleted": deleted or None, "max_results": page_size}
        return self._http.iterate(self._base, Experiment, params)

    def update(
        self,
        name: str,
        *,
        new_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Experiment:
        """Rename (``new_name``) and/or replace all tags (``tags``); what is not given is kept."""
        body = {"name": new_name, "tags": tags}
        return self._http.send_model("PATCH", self._path(name), Experiment, body)

    def delete(self, name: str) -> None:
        """Hide the experiment (its runs are kept); ``restore`` brings it back."""
        self._http.request("DELETE", self._path(name))

    def restore(self, name: str) -> Experiment:
        return self._http.send_model("POST", self._path(name) + "/restore", Experiment)
