"""``${{secrets.<name>}}`` in the variables of a job or a deployment: checked at submit.

The value is revealed only to the process that runs (see job_environment.py); what is
checked here is that each named secret exists and that the caller may read secrets, since
injecting one shows it to the code that runs, and so to whoever wrote that code or reads its
output.
"""

from __future__ import annotations

from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.services.authz import Authorizer
from shipyard.services.job_environment import SECRET_REFERENCE
from shipyard.services.secrets import SecretService


def check_secret_references(
    authorizer: Authorizer,
    secrets: SecretService,
    principal: Principal,
    workspace: str,
    variables: dict[str, str],
    *,
    field: str = "environment_variables",
) -> None:
    """Every ``${{secrets.<name>}}`` in ``variables`` names a secret that exists, and the
    caller may read secrets; a missing one is a 400 naming ``<field>.<variable>``."""
    names = {
        (key, found.group(1))
        for key, value in variables.items()
        for found in SECRET_REFERENCE.finditer(value)
    }
    if not names:
        return
    authorizer.authorize(principal, actions.SECRETS_READ, workspace_scope(workspace))
    for key, name in sorted(names):
        try:
            secrets.get(workspace, name)
        except NotFoundError as exc:
            raise InvalidInputError(
                f"secret {name!r} does not exist in this workspace's key vault",
                code="secret_not_found",
                field=f"{field}.{key}",
            ) from exc
