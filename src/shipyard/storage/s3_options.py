"""How to reach an S3-compatible service; kept apart from s3.py so callers can build options
without the optional ``[s3]`` extra installed."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: S3 refuses multipart parts under 5 MiB (except the last one).
MIN_PART_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class S3Options:
    """Connection settings for one S3-compatible endpoint, passed in by the caller.

    ``endpoint_url`` None means AWS itself. With no keys and ``anonymous`` False, botocore's
    own chain (instance role, shared profile) supplies credentials. The secret and the session
    token stay out of ``repr`` so they never reach a log line by accident.
    """

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str | None = None
    anonymous: bool = False
    #: Seconds to wait for a connection, and for an answer once connected.
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    #: Attempts per request (botocore's and s3fs's retry loops both get this many).
    attempts: int = 3
    #: Multipart part size: memory per upload in progress is about twice this.
    part_size: int = 8 * 1024 * 1024
    #: Bytes fetched per ranged GET while streaming a download.
    read_window: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        if self.attempts < 1 or self.read_window < 1:
            raise ValueError("attempts and read_window must be positive")

    @property
    def endpoint_name(self) -> str:
        """The endpoint as error messages name it (never with credentials)."""
        if not self.endpoint_url:
            return "AWS S3"
        parts = urlsplit(self.endpoint_url)
        if parts.username is None and parts.password is None:
            return self.endpoint_url
        # user:password@ in an endpoint URL is a credential too.
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return parts._replace(netloc=netloc).geturl()
