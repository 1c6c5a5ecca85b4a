"""The environment an MLflow model asks for: its ``requirements.txt``, as pip requirements.

MLflow writes next to every model the packages, pinned, that loading it needs (a
scikit-learn model saved by MLflow 3 with its default format needs ``skops``, for example).
A deployment of an ``mlflow_model`` with no environment of its own runs in exactly those, as
Azure ML builds one from the model's conda file. Two changes, both about what a scoring
instance needs rather than what the model was trained with:

- ``mlflow`` becomes ``mlflow-skinny`` at the same version and extras dropped: loading a
  pyfunc needs the client library, not the tracking server and its UI (a tenth of the size);
- anything pip would read as an option or another file (``-r``, ``--index-url``, ``-e``, a
  local path) makes the file unusable here: the deployment then falls back to the curated
  environment, since the server never lets a model point pip at another index or a path on
  the server.
"""

from __future__ import annotations

import re

#: The most requirements one model may list (a bigger file is not MLflow's).
MAX_REQUIREMENTS = 200

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def pip_requirements(text: str) -> tuple[str, ...] | None:
    """The requirements of a model's ``requirements.txt``; None when it cannot be used."""
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _NAME.match(line)
        if match is None or "/" in line or "\\" in line or line.startswith("-") or " -" in line:
            return None
        name, _extras, rest = match.groups()
        if name.lower().replace("_", "-") == "mlflow":
            found.append(f"mlflow-skinny{rest}")
        else:
            found.append(line)
        if len(found) > MAX_REQUIREMENTS:
            return None
    return tuple(found) or None
