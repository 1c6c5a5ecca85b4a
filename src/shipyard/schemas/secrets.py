"""Secret bodies. A value travels in exactly two: ``SecretSet`` (in) and ``SecretValueRead``
(out, only from the route that reveals it); every other body carries names and dates."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import ConfigDict, Field

from shipyard.schemas.common import RequestBody, ResponseBody

# Names appear in URLs and in environment variable names derived from them: letters, digits,
# '-', '_' and '.', starting with a letter or digit, at most 127 characters (Azure Key Vault's
# limit, so its names fit).
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$")
# The largest value, counted in UTF-8 bytes: room for a certificate chain or a service
# account's JSON key, and small enough to travel in a request body.
MAX_SECRET_BYTES = 64 * 1024


class SecretSet(RequestBody):
    # A secret is kept exactly as sent: stripping whitespace (RequestBody's default) would
    # change a value that ends in a space or a newline.
    model_config = ConfigDict(str_strip_whitespace=False)

    value: str = Field(
        min_length=1,
        description=f"The secret value: text of 1 to {MAX_SECRET_BYTES} bytes (UTF-8).",
    )


class SecretRead(ResponseBody):
    """A secret's metadata; never its value."""

    name: str
    key_id: str = Field(description="The master key that encrypts the value (a fingerprint).")
    created_by: str | None = None
    created_at: datetime
    updated_by: str | None = None
    updated_at: datetime


class SecretValueRead(ResponseBody):
    name: str
    value: str
