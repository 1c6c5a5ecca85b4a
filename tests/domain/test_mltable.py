"""The MLTable file: what is understood, what is refused (naming the field)."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.mltable import (
    PathSpec,
    Reader,
    Transform,
    parse_mltable,
    pattern_regex,
    reader_for_file,
    row_window,
)


def test_an_azure_mltable_is_understood() -> None:
    spec = parse_mltable(
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/MLTable.schema.json",
            "type": "mltable",
            "paths": [{"file": "./a.csv"}, {"folder": "./more"}, {"pattern": "./p/*.csv"}],
            "transformations": [
                {"read_delimited": {"delimiter": ";", "header": "no_header", "encoding": "ascii"}},
                {"skip": 2},
                {"take": 5},
                {"keep_columns": ["a", "b"]},
                {"drop_columns": "b"},
            ],
        }
    )
    assert spec.paths == (
        PathSpec("file", "./a.csv"),
        PathSpec("folder", "./more"),
        PathSpec("pattern", "./p/*.csv"),
    )
    assert spec.reader == Reader("delimited", delimiter=";", header="no_header", encoding="ascii")
    assert [t.kind for t in spec.transforms] == ["skip", "take", "keep_columns", "drop_columns"]
    assert spec.transforms[2].columns == ("a", "b")
    assert spec.transforms[3].columns == ("b",)


@pytest.mark.parametrize(
    ("document", "field", "code"),
    [
        ([], "MLTable", "invalid_mltable"),
        ({"paths": []}, "MLTable.paths", "invalid_mltable"),
        ({"paths": [{"url": "x"}]}, "MLTable.paths.0", "invalid_mltable"),
        ({"paths": [{"file": ""}]}, "MLTable.paths.0.file", "invalid_mltable"),
        ({"paths": [{"file": "a"}], "colour": 1}, "MLTable.colour", "invalid_mltable"),
        (
            {"paths": [{"file": "a"}], "transformations": [{"filter": "x > 1"}]},
            "MLTable.transformations.0",
            "unsupported_transformation",
        ),
        (
            {"paths": [{"file": "a"}], "transformations": [{"take": -1}]},
            "MLTable.transformations.0.take",
            "invalid_mltable",
        ),
        (
            {"paths": [{"file": "a"}], "transformations": [{"take": 1}, {"read_parquet": {}}]},
            "MLTable.transformations.1",
            "invalid_mltable",
        ),
        (
            {"paths": [{"file": "a"}], "transformations": [{"read_delimited": {"header": "x"}}]},
            "MLTable.transformations.0.read_delimited.header",
            "invalid_mltable",
        ),
        (
            {"paths": [{"file": "a"}], "transformations": [{"read_delimited": {"sep": ","}}]},
            "MLTable.transformations.0.read_delimited.sep",
            "invalid_mltable",
        ),
        (
            {"paths": [{"file": "a"}], "transformations": [{"keep_columns": []}]},
            "MLTable.transformations.0.keep_columns",
            "invalid_mltable",
        ),
    ],
)
def test_bad_mltables_name_the_field(document: Any, field: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_mltable(document)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_take_and_skip_compose_in_order() -> None:
    def window(*steps: tuple[str, int]) -> tuple[int, int | None]:
        return row_window(tuple(Transform(kind, count=n) for kind, n in steps))  # type: ignore[arg-type]

    assert window() == (0, None)
    assert window(("skip", 2), ("take", 5)) == (2, 5)
    assert window(("take", 5), ("skip", 2)) == (2, 3)
    assert window(("take", 5), ("skip", 9)) == (9, 0)
    assert window(("take", 5), ("take", 10), ("skip", 1), ("skip", 1)) == (2, 3)


def test_patterns_and_extensions() -> None:
    assert pattern_regex("*.csv").fullmatch("a.csv")
    assert not pattern_regex("*.csv").fullmatch("sub/a.csv")
    assert pattern_regex("**/*.csv").fullmatch("sub/deeper/a.csv")
    assert pattern_regex("**/*.csv").fullmatch("a.csv")
    assert pattern_regex("part-?.parquet").fullmatch("part-1.parquet")
    assert reader_for_file("x.TSV") == Reader("delimited", delimiter="\t")
    assert reader_for_file("x.parquet") == Reader("parquet")
    assert reader_for_file("x.jsonl") == Reader("json_lines")
    assert reader_for_file("x.bin") is None
