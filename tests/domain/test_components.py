"""Component specs and step input values (pure): every rule of the YAML, every way a value
can be wrong, the definition hash, and references."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.domain.components import (
    ComponentRef,
    ComponentSpec,
    InputSpec,
    bind_inputs,
    parse_component,
    parse_component_ref,
)
from shipyard.domain.errors import InvalidInputError

PINNED_ENV = {
    "ref": "azureml:shipyard-minimal:1",
    "name": "shipyard-minimal",
    "version": "1",
    "spec": {"python": None, "pip": ["mlflow-skinny==3.17.2"], "image": None, "build": None,
             "os_type": "linux"},
    "spec_hash": "f" * 64,
    "curated": True,
}  # fmt: skip


def component(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "train",
        "command": "python train.py --data ${{inputs.data}} --epochs ${{inputs.epochs}} "
        "$[[--lr ${{inputs.lr}}]] $[[--note ${{inputs.note}}]] --out ${{outputs.model}}",
        "environment": "azureml:shipyard-minimal@latest",
        "inputs": {
            "data": {"type": "uri_folder", "mode": "download"},
            "epochs": {"type": "integer", "default": 10, "min": 1, "max": 100},
            "lr": {"type": "number", "optional": True, "min": 0.0, "max": 1},
            "note": {"type": "string", "optional": True},
            "solver": {"type": "string", "enum": ["lbfgs", "saga"], "default": "lbfgs"},
            "shuffle": {"type": "boolean", "default": True},
            "table": {"type": "mltable", "optional": True, "mode": "eval_mount"},
        },
        "outputs": {"model": {"type": "mlflow_model", "mode": "upload"}},
    }
    body.update(changes)
    return body


def spec(**changes: Any) -> ComponentSpec:
    return parse_component(component(**changes))


def refused(data: Any, *, prefix: str = "") -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        parse_component(data, prefix=prefix)
    return caught.value


# -- the spec -------------------------------------------------------------------------------


def test_a_component_is_parsed_normalised_and_round_trips() -> None:
    parsed = spec(
        version=3, display_name="Train", tags={"team": "churn", "n": 1}, is_deterministic=False
    )
    assert (parsed.name, parsed.version, parsed.display_name) == ("train", "3", "Train")
    assert parsed.tags == {"team": "churn", "n": "1"}
    assert parsed.is_deterministic is False
    assert parsed.inputs["epochs"] == InputSpec("integer", 10, False, 1, 100)
    assert parsed.inputs["lr"].required is False
    assert parsed.inputs["data"].required is True
    assert parsed.inputs["epochs"].required is False  # it has a default
    assert parsed.inputs["data"].is_data
    assert parsed.outputs["model"].mode == "upload"
    assert ComponentSpec.from_json(parsed.to_json()) == parsed


def test_values_in_the_declaration_are_converted_to_the_type() -> None:
    body = component()
    body["inputs"]["epochs"] = {"type": "integer", "min": "1", "max": 100.0, "default": "10.0"}
    body["inputs"]["lr"] = {"type": "number", "optional": True, "default": "0.5", "max": "1"}
    body["inputs"]["shuffle"] = {"type": "boolean", "default": "FALSE"}
    body["inputs"]["solver"] = {"type": "string", "enum": ["a", 1], "default": 1}
    parsed = parse_component(body)
    assert parsed.inputs["epochs"] == InputSpec("integer", 10, False, 1, 100)
    assert parsed.inputs["lr"].default == 0.5
    assert parsed.inputs["shuffle"].default is False
    assert parsed.inputs["solver"].enum == ("a", "1")
    assert parsed.inputs["solver"].default == "1"


def test_a_version_may_be_omitted_or_a_whole_number_or_text() -> None:
    assert spec().version is None
    assert spec(version="").version is None
    assert spec(version=2).version == "2"
    assert spec(version="2024.1-rc").version == "2024.1-rc"


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # names
    ("uppercase name", component(name="Train"), "name", "invalid_name"),
    ("dash in name", component(name="my-train"), "name", "invalid_name"),
    ("digit first", component(name="1train"), "name", "invalid_name"),
    ("name too long", component(name="a" * 256), "name", "invalid_name"),
    ("name not text", component(name=5), "name", "invalid_name"),
    # versions
    ("float version", component(version=1.10), "version", "invalid_version"),
    ("bool version", component(version=True), "version", "invalid_version"),
    ("latest", component(version="latest"), "version", "invalid_version"),
    ("spaces", component(version="1 0"), "version", "invalid_version"),
    # top level
    ("unknown field", component(jobs={}), "jobs", "unknown_field"),
    ("pipeline type", component(type="pipeline"), "type", "unsupported_component_type"),
    ("no command", {k: v for k, v in component().items() if k != "command"}, "command",
     "missing_field"),
    ("empty command", component(command="  "), "command", "invalid_field"),
    ("command not text", component(command=["python"]), "command", "invalid_field"),
    ("NUL in command", component(command="a\x00b"), "command", "invalid_field"),
    ("no environment", {k: v for k, v in component().items() if k != "environment"},
     "environment", "missing_field"),
    ("environment a number", component(environment=3), "environment", "invalid_field"),
    ("display name not text", component(display_name=1), "display_name", "invalid_field"),
    ("description too long", component(description="x" * 10_001), "description",
     "invalid_field"),
    ("tags a list", component(tags=["a"]), "tags", "invalid_field"),
    ("tag value a mapping", component(tags={"a": {"b": 1}}), "tags.a", "invalid_field"),
    ("is_deterministic text", component(is_deterministic="yes"), "is_deterministic",
     "invalid_field"),
    ("empty code", component(code=""), "code", "invalid_field"),
    ("includes not a list", component(additional_includes="../lib"), "additional_includes",
     "invalid_field"),
    ("empty include", component(additional_includes=["ok", ""]), "additional_includes.1",
     "invalid_field"),
    ("resources a list", component(resources=[1]), "resources", "invalid_field"),
    ("instance_count zero", component(resources={"instance_count": 0}),
     "resources.instance_count", "invalid_field"),
    ("instance_count text", component(resources={"instance_count": "2"}),
     "resources.instance_count", "invalid_field"),
    ("distribution type", component(distribution={"type": "horovod"}), "distribution.type",
     "invalid_field"),
    # the command against the declarations
    ("undeclared input", component(command="x ${{inputs.nope}}"), "command",
     "undefined_reference"),
    ("undeclared output", component(command="x ${{outputs.nope}}"), "command",
     "undefined_reference"),
    ("unknown expression", component(command="x ${{search_space.lr}}"), "command",
     "invalid_expression"),
    ("required input in $[[ ]]", component(command="x $[[--d ${{inputs.data}}]]"), "command",
     "required_input_in_optional_fragment"),
    ("input with a default in $[[ ]]", component(command="x $[[--e ${{inputs.epochs}}]]"),
     "command", "required_input_in_optional_fragment"),
    ("unclosed $[[", component(command="x $[[--lr ${{inputs.lr}}"), "command",
     "invalid_field"),
    ("nested $[[", component(command="x $[[a $[[--lr ${{inputs.lr}}]] ]]"), "command",
     "invalid_field"),
    # inputs
    ("inputs a list", component(inputs=["a"]), "inputs", "invalid_field"),
    ("input not a mapping", component(inputs={"a": "string"}), "inputs.a", "invalid_field"),
    ("input without type", component(inputs={"a": {"default": 1}}), "inputs.a.type",
     "missing_field"),
    ("unknown input type", component(inputs={"a": {"type": "float"}}), "inputs.a.type",
     "invalid_type"),
    ("triton model", component(inputs={"a": {"type": "triton_model"}}), "inputs.a.type",
     "invalid_type"),
    ("unknown input key", component(inputs={"a": {"type": "string", "path": "x"}}),
     "inputs.a.path", "unknown_field"),
    ("bad input name", component(inputs={"a-b": {"type": "string"}}), "inputs.a-b",
     "invalid_name"),
    ("reserved input name", component(inputs={"home": {"type": "string"}}), "inputs.home",
     "reserved_name"),
    ("reserved any case", component(inputs={"LD_LIBRARY_PATH": {"type": "string"}}),
     "inputs.LD_LIBRARY_PATH", "reserved_name"),
    ("names equal but case", component(inputs={"a": {"type": "string"},
                                                "A": {"type": "string"}}),
     "inputs.A", "duplicate_name"),
    ("optional text", component(inputs={"a": {"type": "string", "optional": "true"}}),
     "inputs.a.optional", "invalid_field"),
    ("description a number", component(inputs={"a": {"type": "string", "description": 1}}),
     "inputs.a.description", "invalid_field"),
    ("min on string", component(inputs={"a": {"type": "string", "min": 1}}), "inputs.a.min",
     "invalid_combination"),
    ("max on boolean", component(inputs={"a": {"type": "boolean", "max": 1}}), "inputs.a.max",
     "invalid_combination"),
    ("min on data", component(inputs={"a": {"type": "uri_file", "min": 1}}), "inputs.a.min",
     "invalid_combination"),
    ("enum on integer", component(inputs={"a": {"type": "integer", "enum": [1]}}),
     "inputs.a.enum", "invalid_combination"),
    ("enum on data", component(inputs={"a": {"type": "uri_folder", "enum": ["x"]}}),
     "inputs.a.enum", "invalid_combination"),
    ("mode on number", component(inputs={"a": {"type": "number", "mode": "direct"}}),
     "inputs.a.mode", "invalid_combination"),
    ("unknown input mode", component(inputs={"a": {"type": "uri_folder", "mode": "mount"}}),
     "inputs.a.mode", "invalid_field"),
    ("eval mode on a file", component(inputs={"a": {"type": "uri_file",
                                                     "mode": "eval_download"}}),
     "inputs.a.mode", "invalid_combination"),
    ("min not a number", component(inputs={"a": {"type": "number", "min": "low"}}),
     "inputs.a.min", "invalid_value"),
    ("min a boolean", component(inputs={"a": {"type": "number", "min": True}}),
     "inputs.a.min", "invalid_value"),
    ("integer min fractional", component(inputs={"a": {"type": "integer", "min": 0.5}}),
     "inputs.a.min", "invalid_value"),
    ("min above max", component(inputs={"a": {"type": "integer", "min": 5, "max": 4}}),
     "inputs.a.max", "invalid_range"),
    ("enum not a list", component(inputs={"a": {"type": "string", "enum": "a,b"}}),
     "inputs.a.enum", "invalid_field"),
    ("enum empty", component(inputs={"a": {"type": "string", "enum": []}}), "inputs.a.enum",
     "invalid_field"),
    ("enum holds a list", component(inputs={"a": {"type": "string", "enum": ["a", ["b"]]}}),
     "inputs.a.enum.1", "invalid_value"),
    ("default below min", component(inputs={"a": {"type": "number", "min": 1,
                                                   "default": 0.5}}),
     "inputs.a.default", "out_of_range"),
    ("default above max", component(inputs={"a": {"type": "integer", "max": 1,
                                                   "default": 2}}),
     "inputs.a.default", "out_of_range"),
    ("default outside enum", component(inputs={"a": {"type": "string", "enum": ["x"],
                                                      "default": "y"}}),
     "inputs.a.default", "not_in_enum"),
    ("integer default text", component(inputs={"a": {"type": "integer", "default": "ten"}}),
     "inputs.a.default", "invalid_value"),
    ("boolean default text", component(inputs={"a": {"type": "boolean", "default": "yes"}}),
     "inputs.a.default", "invalid_value"),
    ("string default a boolean", component(inputs={"a": {"type": "string", "default": True}}),
     "inputs.a.default", "invalid_value"),
    ("data default a number", component(inputs={"a": {"type": "uri_file", "default": 3}}),
     "inputs.a.default", "invalid_field"),
    # outputs
    ("output not a mapping", component(outputs={"model": None}), "outputs.model",
     "invalid_field"),
    ("output without type", component(outputs={"model": {"mode": "upload"}}),
     "outputs.model.type", "missing_field"),
    ("primitive output", component(outputs={"model": {"type": "number"}}),
     "outputs.model.type", "invalid_type"),
    ("unknown output type", component(outputs={"model": {"type": "folder"}}),
     "outputs.model.type", "invalid_type"),
    ("unknown output mode", component(outputs={"model": {"type": "uri_folder",
                                                          "mode": "download"}}),
     "outputs.model.mode", "invalid_field"),
    ("output with name", component(outputs={"model": {"type": "uri_folder",
                                                       "name": "m"}}),
     "outputs.model.name", "unknown_field"),
    ("reserved output name", component(outputs={"pwd": {"type": "uri_folder"}}),
     "outputs.pwd", "reserved_name"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "field", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_definitions_name_their_field(data: dict[str, Any], field: str, code: str) -> None:
    error = refused(data)
    assert (error.field, error.code) == (field, code), error.detail


def test_errors_inside_a_pipeline_carry_the_prefix() -> None:
    error = refused(
        component(inputs={"a": {"type": "string", "min": 1}}), prefix="jobs.fit.component."
    )
    assert error.field == "jobs.fit.component.inputs.a.min"
    assert refused("not a mapping", prefix="jobs.fit.component.").field == "jobs.fit.component"


def test_messages_say_what_is_wrong_and_how_to_fix_it() -> None:
    assert "optional: true" in refused(component(command="x $[[${{inputs.data}}]]")).detail
    assert "quote it" in refused(component(version=1.10)).detail
    assert (
        "number and integer inputs only"
        in refused(component(inputs={"a": {"type": "string", "max": 1}})).detail
    )
    assert (
        "'x'"
        in refused(
            component(inputs={"a": {"type": "string", "enum": ["x"], "default": "y"}})
        ).detail
    )


def test_optional_inputs_may_have_defaults_and_outputs_may_sit_in_fragments() -> None:
    parsed = spec(command="x $[[--lr ${{inputs.lr}} --out ${{outputs.model}}]] ${{inputs.data}}")
    assert "$[[" in parsed.command


# -- the definition hash --------------------------------------------------------------------


def pinned(**changes: Any) -> ComponentSpec:
    return spec(**changes).with_environment(PINNED_ENV)


def test_the_definition_hash_ignores_names_descriptions_and_tags() -> None:
    base = pinned().definition_hash()
    assert len(base) == 64
    assert pinned(name="other", version="9", display_name="D", description="d",
                  tags={"a": "b"}).definition_hash() == base  # fmt: skip
    body = component()
    body["inputs"]["data"]["description"] = "the data"
    body["outputs"]["model"]["description"] = "the model"
    assert parse_component(body).with_environment(PINNED_ENV).definition_hash() == base
    reordered = component(inputs=dict(reversed(component()["inputs"].items())))
    assert parse_component(reordered).with_environment(PINNED_ENV).definition_hash() == base


def test_the_definition_hash_follows_what_runs() -> None:
    base = pinned().definition_hash()
    other_env = {**PINNED_ENV, "spec": {**PINNED_ENV["spec"], "pip": ["six"]}}
    renamed_env = {**PINNED_ENV, "name": "mine", "version": "4", "ref": "azureml:mine:4"}
    assert spec().with_environment(renamed_env).definition_hash() == base  # same packages
    changed = [
        spec().with_environment(other_env),
        pinned(command=component()["command"] + " -v"),
        pinned(code="sha256:" + "a" * 64),
        pinned(is_deterministic=False),
        pinned(resources={"instance_count": 2}),
        pinned(distribution={"type": "pytorch"}),
        pinned(outputs={"model": {"type": "mlflow_model"}}),  # the mode differs
    ]
    stricter = component()
    stricter["inputs"]["epochs"]["max"] = 50
    changed.append(parse_component(stricter).with_environment(PINNED_ENV))
    new_default = component()
    new_default["inputs"]["solver"]["default"] = "saga"
    changed.append(parse_component(new_default).with_environment(PINNED_ENV))
    hashes = {c.definition_hash() for c in changed}
    assert base not in hashes
    assert len(hashes) == len(changed)


# -- binding a step's values ----------------------------------------------------------------


def test_defaults_fill_in_and_unset_optional_inputs_stay_none() -> None:
    bound = bind_inputs(spec(), {"data": "azureml:customers:1"}, field="jobs.fit.inputs")
    assert bound == {
        "data": {"type": "uri_folder", "path": "azureml:customers:1", "mode": "download"},
        "epochs": 10,
        "lr": None,
        "note": None,
        "solver": "lbfgs",
        "shuffle": True,
        "table": None,
    }


def test_values_are_converted_to_their_types() -> None:
    bound = bind_inputs(
        spec(),
        {
            "data": {"type": "uri_folder", "path": "azureml://datastores/ds/paths/x",
                     "mode": "direct"},
            "epochs": "10.0",
            "lr": 1,
            "note": 42,
            "solver": "saga",
            "shuffle": "False",
            "table": "azureml:tbl@latest",
        },
    )  # fmt: skip
    assert bound == {
        "data": {"type": "uri_folder", "path": "azureml://datastores/ds/paths/x", "mode": "direct"},
        "epochs": 10,
        "lr": 1,
        "note": "42",
        "solver": "saga",
        "shuffle": False,
        "table": {"type": "mltable", "path": "azureml:tbl@latest", "mode": "eval_mount"},
    }
    assert bind_inputs(spec(), {"data": "d", "epochs": 7.0, "shuffle": "TRUE"})["epochs"] == 7
    assert bind_inputs(spec(), {"data": "d", "shuffle": "TRUE"})["shuffle"] is True
    assert bind_inputs(spec(), {"data": "d", "lr": "0.25"})["lr"] == 0.25
    assert bind_inputs(spec(), {"data": "d", "lr": " 1e-1 "})["lr"] == 0.1
    assert bind_inputs(spec(), {"data": "d", "epochs": None})["epochs"] == 10  # None: unset


BAD_VALUES: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("missing required", {}, "data", "missing_input", "uri_folder path"),
    ("unknown input", {"data": "d", "epoch": 1}, "epoch", "unknown_input", "epochs"),
    ("integer text", {"data": "d", "epochs": "ten"}, "epochs", "invalid_value", "whole number"),
    ("integer fractional", {"data": "d", "epochs": 2.5}, "epochs", "invalid_value",
     "whole number"),
    ("integer fractional text", {"data": "d", "epochs": "2.5"}, "epochs", "invalid_value",
     "whole number"),
    ("integer a boolean", {"data": "d", "epochs": True}, "epochs", "invalid_value",
     "whole number"),
    ("integer below min", {"data": "d", "epochs": 0}, "epochs", "out_of_range", "minimum 1"),
    ("integer above max", {"data": "d", "epochs": "101"}, "epochs", "out_of_range",
     "maximum 100"),
    ("number text", {"data": "d", "lr": "fast"}, "lr", "invalid_value", "a number"),
    ("number nan", {"data": "d", "lr": "nan"}, "lr", "invalid_value", "a number"),
    ("number infinite", {"data": "d", "lr": float("inf")}, "lr", "invalid_value", "a number"),
    ("number a list", {"data": "d", "lr": [0.1]}, "lr", "invalid_value", "a list"),
    ("number above max", {"data": "d", "lr": 1.5}, "lr", "out_of_range", "from 0.0 to 1"),
    ("boolean text", {"data": "d", "shuffle": "yes"}, "shuffle", "invalid_value",
     "true or false"),
    ("boolean a number", {"data": "d", "shuffle": 1}, "shuffle", "invalid_value",
     "true or false"),
    ("string a boolean", {"data": "d", "note": False}, "note", "invalid_value", "quote it"),
    ("string a mapping", {"data": "d", "note": {"a": 1}}, "note", "invalid_value", "mapping"),
    ("not in enum", {"data": "d", "solver": "adam"}, "solver", "not_in_enum", "'lbfgs'"),
    ("data a number", {"data": 3}, "data", "invalid_value", "uri_folder path"),
    ("data empty path", {"data": " "}, "data", "invalid_field", "empty path"),
    ("data type mismatch", {"data": {"type": "uri_file", "path": "p"}}, "data.type",
     "type_mismatch", "declared uri_folder"),
    ("data without path", {"data": {"type": "uri_folder"}}, "data.path", "missing_field",
     "needs a path"),
    ("data unknown key", {"data": {"path": "p", "datastore": "x"}}, "data.datastore",
     "unknown_field", "allowed"),
    ("data bad mode", {"data": {"path": "p", "mode": "upload"}}, "data.mode",
     "invalid_field", "ro_mount"),
    ("eval mode on a folder", {"data": {"path": "p", "mode": "eval_mount"}}, "data.mode",
     "invalid_combination", "mltable"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "name", "code", "says"),
    [b[1:] for b in BAD_VALUES],
    ids=[b[0] for b in BAD_VALUES],
)
def test_bad_values_name_the_input_under_the_field(
    values: dict[str, Any], name: str, code: str, says: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        bind_inputs(spec(), values, field="jobs.train.inputs")
    error = caught.value
    assert (error.field, error.code) == (f"jobs.train.inputs.{name}", code), error.detail
    assert says in error.detail


def test_an_optional_input_without_a_default_may_stay_unset() -> None:
    parsed = spec(
        inputs={"lr": {"type": "number", "optional": True}}, command="x $[[${{inputs.lr}}]]"
    )
    assert bind_inputs(parsed, {}) == {"lr": None}
    with pytest.raises(InvalidInputError) as caught:
        bind_inputs(parsed, {"lr": "x"})
    assert caught.value.field == "inputs.lr"


# -- references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("azureml:train:1", ComponentRef("train", "1")),
        ("azureml:train@latest", ComponentRef("train", None, "latest")),
        ("AzureML:train:v2", ComponentRef("train", "v2")),
        ("shipyard:train:1", ComponentRef("train", "1")),
        ("shipyard:train@latest", ComponentRef("train", None, "latest")),
        ("train:1", ComponentRef("train", "1")),
        ("train@latest", ComponentRef("train", None, "latest")),
        ("azureml:train", ComponentRef("train", None, "latest")),
        (" train:1 ", ComponentRef("train", "1")),
        (
            "azureml:/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices"
            "/workspaces/w/components/train/versions/4",
            ComponentRef("train", "4"),
        ),
        (
            "azureml://registries/shared/components/train/versions/1",
            ComponentRef("train", "1", None, "shared"),
        ),
        (
            "azureml://registries/azureml/components/train/labels/latest",
            ComponentRef("train", None, "latest", "azureml"),
        ),
    ],
)
def test_references_parse(text: str, ref: ComponentRef) -> None:
    assert parse_component_ref(text, field="component") == ref


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("./train.yml", "invalid_reference"),
        ("train.yml", "invalid_reference"),
        ("Train:1", "invalid_reference"),
        ("azureml:train:1:2", "invalid_reference"),
        ("", "invalid_reference"),
        ("azureml:train@stable", "invalid_label"),
    ],
)
def test_bad_references_name_the_field(text: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_component_ref(text, field="jobs.fit.component")
    assert (caught.value.code, caught.value.field) == (code, "jobs.fit.component")
