"""Where a datastore's keys live: always in the workspace's key vault.

Keys given inline are kept in the datastore's own secret (``datastore-<name>-credentials``,
replaced on rotation, deleted with the datastore); ``credentials: {secret_name: ...}`` names an
existing secret instead, which needs the right to read that secret. Datastore rows never hold
keys.
"""

from __future__ import annotations

from contextlib import suppress

from shipyard.domain.actions import workspace_scope
from shipyard.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ShipyardError,
)
from shipyard.domain.principals import Principal
from shipyard.schemas.datastores import DatastoreCredentials
from shipyard.services.authz import Authorizer
from shipyard.services.datastore_targets import (
    MANAGED_SECRET,
    PRINTABLE,
    Credentials,
    DatastorePolicy,
    Keys,
    Target,
    managed_secret_name,
    not_for,
    parse_keys,
)
from shipyard.services.secrets import SecretService

# Reading a secret's value: naming a secret as a datastore's keys needs it too.
SECRETS_READ = "workspaces/secrets/read"


class DatastoreKeys:
    def __init__(
        self, secrets: SecretService, authorizer: Authorizer, policy: DatastorePolicy
    ) -> None:
        self.secrets = secrets
        self.authorizer = authorizer
        self.policy = policy

    def choose(
        self,
        workspace: str,
        name: str,
        kind: str,
        given: DatastoreCredentials | None,
        principal: Principal,
    ) -> Credentials:
        if kind == "local":
            if given is not None:
                raise not_for("credentials", "local", "s3")
            return Credentials("none")
        if given is None:
            if not self.policy.server_credentials:
                raise InvalidInputError(
                    "an s3 datastore without credentials would sign in as the server, which "
                    "this server does not allow: give access_key_id and secret_access_key, "
                    "secret_name, or anonymous: true (an administrator can allow it with the "
                    "setting datastore_server_credentials)",
                    code="server_credentials_not_allowed",
                    field="credentials",
                )
            return Credentials("identity")
        pair = given.access_key_id is not None or given.secret_access_key is not None
        if sum([pair, given.secret_name is not None, given.anonymous]) != 1:
            raise InvalidInputError(
                "credentials take exactly one of: access_key_id with secret_access_key, "
                "secret_name, or anonymous: true",
                code="invalid_credentials",
                field="credentials",
            )
        if given.anonymous:
            return Credentials("anonymous")
        if given.secret_name is not None:
            return self._referenced(workspace, given.secret_name, principal)
        if given.access_key_id is None or given.secret_access_key is None:
            missing = "access_key_id" if given.access_key_id is None else "secret_access_key"
            raise InvalidInputError(
                "access_key_id and secret_access_key go together",
                code="missing_field",
                field=f"credentials.{missing}",
            )
        keys = Keys(given.access_key_id, given.secret_access_key.get_secret_value())
        for field, value in (
            ("access_key_id", keys.access_key_id),
            ("secret_access_key", keys.secret_access_key),
        ):
            # Keys go into request headers and signatures: printable ASCII only (said without
            # quoting them).
            if not PRINTABLE.fullmatch(value):
                raise InvalidInputError(
                    f"{field} may hold printable ASCII characters only, no spaces",
                    code="invalid_credentials",
                    field=f"credentials.{field}",
                )
        return Credentials("secret", managed_secret_name(name), True, keys)

    def _referenced(self, workspace: str, secret: str, principal: Principal) -> Credentials:
        """An existing secret as the keys. Naming one needs the right to read it: the
        datastore would otherwise hand its holder whatever those keys open."""
        field = "credentials.secret_name"
        try:
            self.authorizer.authorize(principal, SECRETS_READ, workspace_scope(workspace))
        except ForbiddenError as exc:
            raise ForbiddenError(
                f"naming secret {secret!r} as a datastore's credentials needs {SECRETS_READ} "
                "(the right to read it); give the keys themselves instead",
                code=exc.code,
                field=field,
            ) from exc
        if MANAGED_SECRET.fullmatch(secret):
            raise InvalidInputError(
                f"secret {secret!r} belongs to a datastore (names datastore-*-credentials are "
                "managed by datastores and deleted with them); keep shared keys under another "
                "name",
                code="invalid_credentials",
                field=field,
            )
        try:
            value = self.secrets.reveal(workspace, secret).value
        except ShipyardError as exc:
            raise type(exc)(exc.detail, code=exc.code, field=field) from exc
        return Credentials("secret", secret, False, parse_keys(value, secret, field=field))

    def keep(self, workspace: str, credentials: Credentials, principal_id: str) -> None:
        """Write keys given inline to the datastore's own secret."""
        if credentials.managed and credentials.keys and credentials.secret:
            self.secrets.set(
                workspace, credentials.secret, credentials.keys.as_json(), principal_id
            )

    def stored(self, workspace: str, target: Target) -> Keys | None:
        if target.kind != "secret" or not target.secret:
            return None
        try:
            value = self.secrets.reveal(workspace, target.secret).value
        except NotFoundError as exc:
            raise ConflictError(
                f"datastore {target.name!r} keeps its keys in secret {target.secret!r}, which "
                "is no longer in the key vault; set that secret again or update the "
                "datastore's credentials",
                code="datastore_credentials_missing",
            ) from exc
        return parse_keys(value, target.secret, field=None)

    def forget(self, workspace: str, secret: str) -> None:
        # Already gone (or deleted by hand): nothing to clean up.
        with suppress(NotFoundError):
            self.secrets.delete(workspace, secret)
