"""Resource YAML files: field lines, --set overrides, and the files that must be refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.sdk.yaml import (
    MAX_FILE_BYTES,
    YamlFileError,
    apply_override,
    load_yaml_file,
    parse_override,
    parse_yaml,
)

WORKSPACE_YAML = """\
# A workspace.
name: churn
display_name: Churn models

description: >
  Predicting churn.
tags:
  team: growth
  tier: gold
storage:
  uri: /data/churn
"""


def _write(tmp_path: Path, text: str, name: str = "workspace.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Loading and line lookup


def test_a_file_loads_as_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, WORKSPACE_YAML)
    document = load_yaml_file(path)
    assert document.path == str(path)
    assert document.data == {
        "name": "churn",
        "display_name": "Churn models",
        "description": "Predicting churn.\n",
        "tags": {"team": "growth", "tier": "gold"},
        "storage": {"uri": "/data/churn"},
    }


def test_line_of_top_level_and_nested_fields(tmp_path: Path) -> None:
    document = load_yaml_file(_write(tmp_path, WORKSPACE_YAML))
    assert document.line_of("name") == 2
    assert document.line_of("display_name") == 3
    assert document.line_of("description") == 5
    assert document.line_of("tags") == 7
    assert document.line_of("tags.team") == 8
    assert document.line_of("tags.tier") == 9
    assert document.line_of("storage.uri") == 11


def test_an_unknown_nested_field_falls_back_to_its_parent(tmp_path: Path) -> None:
    document = load_yaml_file(_write(tmp_path, WORKSPACE_YAML))
    assert document.line_of("tags.owner") == 7
    assert document.line_of("storage.uri.extra.deeper") == 11
    assert document.line_of("nowhere.at.all") is None
    assert document.line_of(None) is None


def test_lines_of_list_items() -> None:
    document = parse_yaml("name: x\nitems:\n  - a: 1\n  - b: 2\n", "inline.yaml")
    assert document.line_of("items.0") == 3
    assert document.line_of("items.1.b") == 4


def test_an_error_about_a_field_is_restated_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, WORKSPACE_YAML)
    document = load_yaml_file(path)
    error = document.error(
        InvalidInputError("must be shorter", code="invalid_field", field="tags.team")
    )
    assert isinstance(error, YamlFileError)
    assert error.code == "invalid_field"
    assert error.line == 8
    assert error.field == "tags.team"
    assert f"{path}:8:" in str(error)
    assert "must be shorter" in str(error)


def test_an_error_about_no_field_names_only_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, WORKSPACE_YAML)
    document = load_yaml_file(path)
    error = document.error(NotFoundError("gone", code="workspace_not_found"))
    assert error.line is None
    assert error.detail.startswith(f"{path}:")
    assert "gone" in error.detail


def test_an_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    assert load_yaml_file(_write(tmp_path, "# nothing here\n")).data == {}


# ---------------------------------------------------------------------------------------------
# --set overrides


def test_set_overrides_a_top_level_field(tmp_path: Path) -> None:
    document = load_yaml_file(_write(tmp_path, WORKSPACE_YAML), ["description=Other"])
    assert document.data["description"] == "Other"
    assert document.data["name"] == "churn"


def test_set_overrides_a_nested_field_and_keeps_its_siblings(tmp_path: Path) -> None:
    document = load_yaml_file(_write(tmp_path, WORKSPACE_YAML), ["tags.team=ml"])
    assert document.data["tags"] == {"team": "ml", "tier": "gold"}


def test_set_creates_missing_parents(tmp_path: Path) -> None:
    document = load_yaml_file(_write(tmp_path, "name: x\n"), ["a.b.c=deep", "tags.team=ml"])
    assert document.data == {"name": "x", "a": {"b": {"c": "deep"}}, "tags": {"team": "ml"}}


def test_set_values_are_typed_as_yaml_scalars(tmp_path: Path) -> None:
    overrides = ["a.b=1", "f=2.5", "yes_=true", "nothing=null", "s='1'", "lst=[1, 2]", "e="]
    document = load_yaml_file(_write(tmp_path, "name: x\n"), overrides)
    assert document.data["a"] == {"b": 1}
    assert isinstance(document.data["a"]["b"], int)
    assert document.data["f"] == 2.5
    assert document.data["yes_"] is True
    assert document.data["nothing"] is None
    assert document.data["s"] == "1"
    assert document.data["lst"] == [1, 2]
    assert document.data["e"] == ""


def test_set_keeps_everything_after_the_first_equals_sign() -> None:
    assert parse_override("description=a=b") == ("description", "a=b")


def test_set_value_that_is_not_yaml_is_kept_as_text() -> None:
    assert parse_override("description=[unclosed") == ("description", "[unclosed")


@pytest.mark.parametrize("item", ["x", "tags.team", "=value", ""])
def test_set_without_a_path_and_value_is_refused(item: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_override(item)
    assert caught.value.code == "invalid_set"
    assert "path.to.field=value" in caught.value.detail


def test_set_through_a_scalar_is_refused(tmp_path: Path) -> None:
    document = load_yaml_file(_write(tmp_path, WORKSPACE_YAML))
    with pytest.raises(InvalidInputError) as caught:
        apply_override(document, "name.first=x")
    assert caught.value.code == "invalid_set"
    assert caught.value.field == "name.first"
    assert document.data["name"] == "churn"


def test_a_set_value_that_is_an_alias_bomb_is_refused() -> None:
    levels = ["&a0 [lol]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    with pytest.raises(InvalidInputError) as caught:
        parse_override("description=[" + ", ".join(levels) + "]")
    assert caught.value.code == "invalid_set"
    assert caught.value.field == "description"
    assert "nodes" in caught.value.detail


def test_a_bad_set_given_to_the_loader_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_yaml_file(_write(tmp_path, WORKSPACE_YAML), ["x"])
    assert caught.value.code == "invalid_set"


# ---------------------------------------------------------------------------------------------
# Files that are refused


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: churn\ntags:\n  team: growth\n  tier: [gold\nother: 1\n")
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    error = caught.value
    assert error.code == "invalid_yaml"
    assert error.path == str(path)
    assert error.line is not None
    assert error.line >= 4
    assert f"{path}:{error.line}:" in str(error)
    assert "not valid YAML" in error.detail


def test_a_bad_indentation_error_points_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: churn\ndescription: fine\n  bad: indent\n")
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    assert caught.value.line == 3
    assert f"{path}:3:" in caught.value.detail


@pytest.mark.parametrize(
    "text", ["- a\n- b\n", "just a string\n", "42\n", "null\n"], ids=["list", "str", "int", "null"]
)
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    assert "mapping" in caught.value.detail
    assert str(path) in caught.value.detail


def test_several_documents_in_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(_write(tmp_path, "name: a\n---\nname: b\n"))
    assert caught.value.line == 2


def test_a_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    line = "# padding padding padding padding padding padding padding padding padding\n"
    text = "name: big\n" + line * (MAX_FILE_BYTES // len(line) + 1)
    path = _write(tmp_path, text)
    assert path.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    assert str(path) in caught.value.detail
    assert str(MAX_FILE_BYTES) in caught.value.detail


def test_a_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    text = "name: big\n"
    text += "#" * (MAX_FILE_BYTES - len(text) - 1) + "\n"
    path = _write(tmp_path, text)
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_yaml_file(path).data == {"name": "big"}


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": each level a list of ``width`` aliases to the level below."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_alias_bomb_is_refused(tmp_path: Path) -> None:
    text = _alias_bomb()
    assert len(text) < 1000  # tiny on disk, 9**9 strings unfolded
    path = _write(tmp_path, text)
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    assert "nodes" in caught.value.detail
    assert str(path) in caught.value.detail


def test_a_bomb_hidden_in_a_nested_mapping_is_refused() -> None:
    text = "name: x\ntags:\n  " + _alias_bomb().replace("\n", "\n  ").rstrip() + "\n"
    with pytest.raises(YamlFileError, match="nodes"):
        parse_yaml(text, "nested.yaml")


def test_modest_aliases_are_allowed() -> None:
    document = parse_yaml(_alias_bomb(levels=2, width=3), "small.yaml")
    assert document.data["a2"] == [[["lol"]] * 3] * 3


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "workspace.yaml"
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert "cannot read" in caught.value.detail


def test_a_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError) as caught:
        load_yaml_file(tmp_path)
    assert str(tmp_path) in caught.value.detail
