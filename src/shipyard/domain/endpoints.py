"""Online endpoint and deployment rules, as Azure ML states them (pure; no I/O).

Names: 3 to 32 characters, a letter first, then letters, digits and ``-``, not ending in
``-`` (Azure's rule for both endpoints and deployments).

Traffic: whole percentages per deployment, each 0 to 100, summing to 0 (nothing is served) or
100, naming only deployments of the endpoint. Mirror traffic: at most one deployment, 0 to 50
percent, and never a deployment that takes live traffic (Azure: a deployment receives live or
mirrored traffic, not both). The CLI's ``--traffic "blue=90 green=10"`` text is parsed here, so
the SDK and the server read it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Literal

from shipyard.domain.errors import InvalidInputError

ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
DEPLOYMENT_NAME = ENDPOINT_NAME
MAX_MIRROR_PERCENT = 50

AuthMode = Literal["key", "aml_token"]
KeyType = Literal["primary", "secondary"]
AUTH_MODES: tuple[str, ...] = ("key", "aml_token")
KEY_TYPES: tuple[str, ...] = ("primary", "secondary")

# Azure's provisioning states; the runtime moves a deployment out of Creating and Updating.
CREATING = "Creating"
UPDATING = "Updating"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
DELETING = "Deleting"
PROVISIONING_STATES = (CREATING, UPDATING, SUCCEEDED, FAILED, DELETING)


#: Keys of a deployment's stored spec its instances do not read, so a change of them alone
#: restarts nothing: ``submitted`` is the body as the client sent it, and the gateway reads
#: ``data_collector`` from the store.
NOT_FOR_INSTANCES = frozenset({"submitted", "data_collector"})


def instance_part(spec: Mapping[str, Any], *, ignoring: Collection[str] = ()) -> dict[str, Any]:
    """What a deployment's instances run, from its stored spec (less ``ignoring`` too)."""
    return {k: v for k, v in spec.items() if k not in NOT_FOR_INSTANCES and k not in ignoring}


def check_endpoint_name(name: str, *, field: str = "name") -> str:
    return _check(name, "an endpoint", field)


def check_deployment_name(name: str, *, field: str = "name") -> str:
    return _check(name, "a deployment", field)


def _check(name: str, what: str, field: str) -> str:
    if not ENDPOINT_NAME.fullmatch(name):
        raise InvalidInputError(
            f"{name[:64]!r} is not a valid name for {what}: 3 to 32 characters, a letter "
            "first, then letters, digits and '-', not ending in '-'",
            code="invalid_name",
            field=field,
        )
    return name


def parse_assignments(text: str, *, field: str) -> dict[str, int]:
    """``"blue=90 green=10"`` (spaces or commas between pairs) as ``{"blue": 90, ...}``."""
    found: dict[str, int] = {}
    for pair in re.split(r"[\s,]+", text.strip()):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        if not sep or not name or not re.fullmatch(r"\d{1,3}", value.strip()):
            raise InvalidInputError(
                f'{pair!r} is not <deployment>=<percent>: write e.g. "blue=90 green=10"',
                code="invalid_traffic",
                field=field,
            )
        if name in found:
            raise InvalidInputError(
                f"deployment {name!r} is named twice", code="invalid_traffic", field=field
            )
        found[name] = int(value)
    return found


def check_traffic(traffic: Mapping[str, Any], deployments: Collection[str]) -> dict[str, int]:
    """Live traffic checked against the endpoint's deployments; returned with int values."""
    checked = {name: _percent(value, f"traffic.{name}", 100) for name, value in traffic.items()}
    for name in checked:
        if name not in deployments:
            raise InvalidInputError(
                f"traffic names deployment {name!r}, which this endpoint does not have",
                code="unknown_deployment",
                field=f"traffic.{name}",
            )
    total = sum(checked.values())
    if total not in (0, 100):
        raise InvalidInputError(
            f"traffic adds up to {total}%; it must add up to 100% (or 0% to serve nothing)",
            code="invalid_traffic",
            field="traffic",
        )
    return checked


def check_mirror_traffic(
    mirror: Mapping[str, Any], traffic: Mapping[str, int], deployments: Collection[str]
) -> dict[str, int]:
    """Mirrored traffic checked against the live split and the deployments; a 0% entry is
    dropped (it mirrors nothing)."""
    checked = {
        name: _percent(value, f"mirror_traffic.{name}", MAX_MIRROR_PERCENT)
        for name, value in mirror.items()
    }
    checked = {name: value for name, value in checked.items() if value > 0}
    if len(checked) > 1:
        raise InvalidInputError(
            "mirror_traffic names one deployment at most",
            code="invalid_mirror_traffic",
            field="mirror_traffic",
        )
    for name in checked:
        if name not in deployments:
            raise InvalidInputError(
                f"mirror_traffic names deployment {name!r}, which this endpoint does not have",
                code="unknown_deployment",
                field=f"mirror_traffic.{name}",
            )
        if traffic.get(name, 0) > 0:
            raise InvalidInputError(
                f"deployment {name!r} takes live traffic; a deployment receives live or "
                "mirrored traffic, not both",
                code="invalid_mirror_traffic",
                field=f"mirror_traffic.{name}",
            )
    return checked


def _percent(value: Any, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _not_percent(value, field, maximum)
    try:
        number = float(value)
    except ValueError as exc:
        raise _not_percent(value, field, maximum) from exc
    if not number.is_integer() or not 0 <= number <= maximum:
        raise _not_percent(value, field, maximum)
    return int(number)


def _not_percent(value: Any, field: str, maximum: int) -> InvalidInputError:
    return InvalidInputError(
        f"{str(value)[:32]!r} is not a whole percentage from 0 to {maximum}",
        code="invalid_traffic",
        field=field,
    )


def without_deployment(traffic: Mapping[str, int], name: str) -> dict[str, int]:
    return {key: value for key, value in traffic.items() if key != name}


def takes_traffic(
    name: str, traffic: Mapping[str, int], mirror: Mapping[str, int]
) -> Literal["traffic", "mirror_traffic", None]:
    """Which split still sends ``name`` requests (its deletion is refused until none)."""
    if traffic.get(name, 0) > 0:
        return "traffic"
    if mirror.get(name, 0) > 0:
        return "mirror_traffic"
    return None
