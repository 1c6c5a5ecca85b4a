"""What a collected scoring request becomes in storage: JSON Lines rows and their folder.

One request gives a ``request`` row and a ``response`` row, shaped as Azure's collector
writes them (CloudEvents fields: ``specversion``, ``id``, ``source``, ``type``, ``time``,
``datacontenttype``, ``data``; and ``correlationid``, the same in both rows, which links
them). ``data`` is the body parsed as JSON; a body that is not UTF-8 JSON is kept as base64
text with ``dataencoding: base64``. No header is kept, so keys and tokens never reach the
datastore.

The folder is the request's UTC time cut to the deployment's ``rolling_rate``:
``<yyyy>/<mm>/<dd>/<hh>`` for Hour, ``<yyyy>/<mm>/<dd>/<hh>/<MM>`` for Minute, and so on.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REQUEST_TYPE = "azureml.inference.request"
RESPONSE_TYPE = "azureml.inference.response"
# How many parts of yyyy/mm/dd/hh/MM each rolling rate keeps.
_DEPTH = {"Year": 1, "Month": 2, "Day": 3, "Hour": 4, "Minute": 5}


@dataclass(frozen=True, slots=True)
class Sample:
    """One scoring request as the gateway saw it: built on the event loop, so it holds the
    bytes only; rows are made on the collector's thread."""

    deployment_id: str
    time: float  # when the gateway received it, seconds since the epoch
    request_id: str | None
    request: bytes
    request_type: bytes | None
    status: int
    response: bytes
    response_type: bytes | None
    latency: float  # seconds, from sending it on to the answer

    @property
    def size(self) -> int:
        return len(self.request) + len(self.response)


@dataclass(frozen=True)
class Source:
    """Where a sample came from, as the rows name it."""

    workspace: str
    endpoint: str
    deployment: str

    @property
    def uri(self) -> str:
        endpoint = f"/workspaces/{self.workspace}/onlineEndpoints/{self.endpoint}"
        return f"{endpoint}/deployments/{self.deployment}"


def rows(sample: Sample, source: Source) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request row and the response row of one sample."""
    correlation = str(uuid.uuid4())
    common = {
        "specversion": "1.0",
        "source": source.uri,
        "path": "/score",
        "method": "POST",
        "correlationid": correlation,
        "xrequestid": sample.request_id,
        "endpoint": source.endpoint,
        "deployment": source.deployment,
    }
    request = {
        "id": str(uuid.uuid4()),
        "type": REQUEST_TYPE,
        "time": _iso(sample.time),
        **common,
        **_body(sample.request, sample.request_type),
    }
    response = {
        "id": str(uuid.uuid4()),
        "type": RESPONSE_TYPE,
        "time": _iso(sample.time + sample.latency),
        **common,
        "statuscode": sample.status,
        "latencyms": round(sample.latency * 1000, 3),
        **_body(sample.response, sample.response_type),
    }
    return request, response


def folder(moment: float, rolling_rate: str) -> str:
    """The time folder of a row: ``2026/11/28/13`` for Hour."""
    when = datetime.fromtimestamp(moment, UTC)
    parts = [f"{when:%Y}", f"{when:%m}", f"{when:%d}", f"{when:%H}", f"{when:%M}"]
    return "/".join(parts[: _DEPTH[rolling_rate]])


def file_name(moment: float) -> str:
    """A new object per write (S3 cannot append): sortable by time, unique by the rest."""
    return f"{datetime.fromtimestamp(moment, UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:12]}.jsonl"


def encode(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _body(body: bytes, content_type: bytes | None) -> dict[str, Any]:
    kind = content_type.decode("latin-1") if content_type else None
    try:
        return {"datacontenttype": kind, "data": json.loads(body.decode("utf-8"))}
    except (UnicodeDecodeError, ValueError):
        encoded = base64.b64encode(body).decode("ascii")
        return {"datacontenttype": kind, "dataencoding": "base64", "data": encoded}


def _iso(moment: float) -> str:
    return (
        datetime.fromtimestamp(moment, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
