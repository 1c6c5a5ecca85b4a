"""The batch endpoint rules: output file names and input types."""

from __future__ import annotations

import pytest

from shipyard.domain.batch_endpoints import check_output_file_name, input_type_of
from shipyard.domain.errors import InvalidInputError


@pytest.mark.parametrize("name", ["predictions.csv", "out_1.jsonl", "a", "scores-2026.txt"])
def test_plain_file_names_are_accepted(name: str) -> None:
    assert check_output_file_name(name) == name


@pytest.mark.parametrize(
    "name", ["../up.csv", "a/b.csv", "/abs.csv", ".hidden", "a..b", "", "x" * 129, "a b.csv"]
)
def test_anything_that_could_leave_the_output_folder_is_refused(name: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_output_file_name(name)
    assert refused.value.field == "settings.output_file_name"


def test_the_input_type_is_a_folder_unless_said_otherwise() -> None:
    assert input_type_of(None) == "uri_folder"
    assert input_type_of("uri_file") == "uri_file"
    with pytest.raises(InvalidInputError) as refused:
        input_type_of("mltable", field="inputs.a.type")
    assert refused.value.field == "inputs.a.type"
