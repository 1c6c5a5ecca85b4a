"""An existing job as the template of a new one (a schedule's ``create_job``). Pure.

Azure ML's schedule takes ``create_job: azureml:<job name>`` (the job, submitted again as it
was submitted) or an object naming the job with changes::

    create_job:
      type: pipeline
      job: azureml:nightly_train        # or a local job YAML file (the CLI and SDK read it)
      inputs: {lr: 0.05}                # merged into the job's inputs, name by name
      settings: {force_rerun: true}
      experiment_name: retrain

``inputs``, ``outputs``, ``settings`` and ``tags`` are merged key by key into the job's;
any other field replaces the job's.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from shipyard.domain.errors import InvalidInputError

#: Fields whose entries a template's changes merge into, one by one.
MERGED = ("inputs", "outputs", "settings", "tags")
#: The key of Azure's object form naming the template job.
TEMPLATE_KEY = "job"

_JOB_REF = re.compile(r"^(?:azureml|shipyard):(?P<name>[A-Za-z0-9][A-Za-z0-9_-]{0,254})$")
_PREFIXES = ("azureml:", "shipyard:")


def is_job_ref(value: object) -> bool:
    """``azureml:<something>`` (or ``shipyard:``): a reference, not a local file."""
    return isinstance(value, str) and value.strip().lower().startswith(_PREFIXES)


def parse_job_ref(value: object, *, field: str) -> str:
    """The job name in ``azureml:<job name>``; a 400 naming ``field`` otherwise."""
    found = _JOB_REF.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        shown = str(value)[:120]
        raise InvalidInputError(
            f"{shown!r} is not a job reference: use azureml:<job name> (a local job YAML file "
            "is read by the CLI and SDK)",
            code="invalid_reference",
            field=field,
        )
    return found.group("name")


def merge_job_changes(template: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The template job with ``changes`` applied (the ``job`` key itself left out)."""
    merged = copy.deepcopy(dict(template))
    for key, value in changes.items():
        if key == TEMPLATE_KEY:
            continue
        current = merged.get(key)
        if key in MERGED and isinstance(value, Mapping) and isinstance(current, dict):
            merged[key] = {**current, **copy.deepcopy(dict(value))}
        else:
            merged[key] = copy.deepcopy(value)
    return merged
