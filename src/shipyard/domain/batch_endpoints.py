"""Batch endpoint and deployment rules, as Azure ML states them (pure; no I/O).

Names follow the online endpoints' rule (``domain.endpoints``). A batch deployment's
``output_file_name`` is a plain file name: the driver writes it inside the job's ``score``
output, so a path must never lead out of it. ``--input`` of ``invoke`` is a URI, a data asset
reference or (on the client) a local path; ``input_type`` says whether it is a folder (the
default, as Azure's) or one file.
"""

from __future__ import annotations

import re
from typing import Literal

from shipyard.domain.errors import InvalidInputError

DeploymentType = Literal["model", "pipeline"]
OutputAction = Literal["append_row", "summary_only"]
InputType = Literal["uri_folder", "uri_file"]
INPUT_TYPES: tuple[str, ...] = ("uri_folder", "uri_file")
#: The one data input of a model deployment's job (Azure's name for it).
DATA_INPUT = "input_data"
#: The output a model deployment's job writes its predictions to (Azure's name for it).
SCORE_OUTPUT = "score"
#: The file the driver is added to the deployment's code as; a user's file may not take it.
DRIVER_FILE = "_shipyard_batch_driver.py"
#: Tags the driver sets on its job while it runs (``job show`` and the REST job view).
PROGRESS_TAGS = (
    "batch.mini_batches_total",
    "batch.mini_batches_done",
    "batch.mini_batches_failed",
    "batch.files_failed",
)
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_output_file_name(name: str, *, field: str = "settings.output_file_name") -> str:
    if not _FILE_NAME.fullmatch(name) or ".." in name:
        raise InvalidInputError(
            f"{name[:64]!r} is not a file name: letters, digits, '.', '_' and '-', at most "
            "128 characters, no folders",
            code="invalid_file_name",
            field=field,
        )
    return name


def input_type_of(given: str | None, *, field: str = "input_type") -> InputType:
    """The input's type: as given, else ``uri_folder``."""
    if given is not None:
        if given not in INPUT_TYPES:
            raise InvalidInputError(
                f"input type is uri_folder or uri_file, not {given[:32]!r}",
                code="invalid_input_type",
                field=field,
            )
        return "uri_file" if given == "uri_file" else "uri_folder"
    return "uri_folder"
