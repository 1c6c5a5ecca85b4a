"""Shipyard: a self-hosted machine-learning workspace.

``from shipyard import Client`` is the Python SDK. Importing this package never imports the
server: the SDK needs only httpx, pydantic and the shared wire schemas. The SDK itself is
imported on first use of ``Client`` or ``load_component`` (PEP 562), so the server, which
imports this package on its way to its own modules, does not pay for loading the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard._version import __version__

if TYPE_CHECKING:
    from shipyard.sdk.client import Client
    from shipyard.sdk.components import load_component

__all__ = ["Client", "__version__", "load_component"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from shipyard.sdk.client import Client

        return Client
    if name == "load_component":
        from shipyard.sdk.components import load_component

        return load_component
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
