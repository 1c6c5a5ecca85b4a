"""Shipyard: a self-hosted machine-learning workspace.

``from shipyard import Client`` is the Python SDK. Importing this package never imports the
server: the SDK needs only httpx, pydantic and the shared wire schemas.
"""

from shipyard._version import __version__
from shipyard.sdk.client import Client
from shipyard.sdk.components import load_component

__all__ = ["Client", "__version__", "load_component"]
