"""Components over real HTTP and through the SDK: versions, latest, archive, the environment
pinned at create, bad input naming its field, a local code folder with additional_includes,
components as callable steps, and ``resolve`` (the pipeline submit path's entry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.api.app import build_services
from shipyard.domain.components import ANONYMOUS_NAME, bind_inputs
from shipyard.domain.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.domain.principals import Principal
from shipyard.sdk.client import Client
from shipyard.sdk.code import ignore_rule
from shipyard.sdk.components import load_component
from shipyard.sdk.jobs import Input
from shipyard.sdk.uploads import hash_local
from shipyard.sdk.yaml import YamlFileError, load_yaml_file
from shipyard.services.components import Components
from shipyard.store import users as user_store
from tests.conftest import RunningServer, unique

COMMAND = (
    "python train.py --data ${{inputs.data}} --epochs ${{inputs.epochs}} "
    "$[[--lr ${{inputs.lr}}]] --model ${{outputs.model}}"
)


def definition(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "command": COMMAND,
        "environment": "azureml:shipyard-minimal@latest",
        "inputs": {
            "data": {"type": "uri_folder"},
            "epochs": {"type": "integer", "default": 10, "min": 1, "max": 100},
            "lr": {"type": "number", "optional": True, "min": 0, "max": 1},
            "solver": {"type": "string", "enum": ["lbfgs", "saga"], "default": "lbfgs"},
        },
        "outputs": {"model": {"type": "mlflow_model"}},
    }
    body.update(changes)
    return body


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


@pytest.fixture(scope="module")
def components(server: RunningServer) -> Components:
    """The service the pipeline submit path calls, on the server's own database."""
    return build_services(server.settings, server.db).components


@pytest.fixture(scope="module")
def admin_principal(server: RunningServer) -> Principal:
    with server.db.read() as session:
        admin = user_store.find_admin(session)
        assert admin is not None
        return Principal(admin.id, admin.name, is_admin=True)


def url(ws: str, rest: str = "") -> str:
    return f"/api/v1/workspaces/{ws}/components{rest}"


def create(http: httpx.Client, ws: str, name: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(url(ws, f"/{name}/versions"), json=body)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


# -- versions -------------------------------------------------------------------------------


def test_versions_number_themselves_and_latest_is_the_newest(http: httpx.Client, ws: str) -> None:
    first = create(http, ws, "train", definition(description="first", tags={"team": "churn"}))
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["name"], body["version"], body["type"]) == ("train", "1", "command")
    assert body["environment"] == "azureml:shipyard-minimal:1"  # pinned
    assert body["inputs"]["epochs"] == {"type": "integer", "default": 10, "min": 1, "max": 100,
                                        "optional": False, "enum": None, "description": None,
                                        "mode": None}  # fmt: skip
    assert body["inputs"]["lr"]["optional"] is True
    assert body["outputs"] == {"model": {"type": "mlflow_model", "description": None, "mode": None}}
    assert body["is_deterministic"] is True
    assert len(body["definition_hash"]) == 64
    assert (body["description"], body["tags"], body["created_by"]) == (
        "first",
        {"team": "churn"},
        "admin",
    )

    second = create(http, ws, "train", definition(version=7))
    assert second.json()["version"] == "7"
    third = create(http, ws, "train", definition(is_deterministic=False))
    assert third.json()["version"] == "8"  # one past the highest number used
    assert create(http, ws, "train", definition(version="v-next")).status_code == 201
    assert http.get(url(ws, "/train/versions/latest")).json()["version"] == "v-next"
    listed = http.get(url(ws, "/train/versions")).json()["items"]
    assert [v["version"] for v in listed] == ["v-next", "8", "7", "1"]
    paged = http.get(url(ws, "/train/versions"), params={"max_results": 3}).json()
    rest = http.get(url(ws, "/train/versions"), params={"page_token": paged["next_page_token"]})
    assert [v["version"] for v in rest.json()["items"]] == ["1"]

    again = problem(create(http, ws, "train", definition(version="7")), 409)
    assert (again["code"], again["field"]) == ("component_version_exists", "version")

    changed = http.patch(url(ws, "/train/versions/7"), json={"description": "d", "tags": {}})
    assert (changed.json()["description"], changed.json()["tags"]) == ("d", {})
    assert changed.json()["command"] == COMMAND  # nothing else changes
    assert (
        problem(http.patch(url(ws, "/train/versions/7"), json={"command": "x"}), 400)["field"]
        == "command"
    )

    assert http.post(url(ws, "/train/versions/v-next/archive")).status_code == 204
    assert http.get(url(ws, "/train/versions/latest")).json()["version"] == "8"
    assert http.get(url(ws, "/train/versions/v-next")).json()["archived"] is True
    assert "v-next" not in [
        v["version"] for v in http.get(url(ws, "/train/versions")).json()["items"]
    ]
    everything = http.get(url(ws, "/train/versions"), params={"include_archived": True}).json()
    assert len(everything["items"]) == 4
    assert http.post(url(ws, "/train/versions/v-next/restore")).status_code == 204
    assert http.get(url(ws, "/train/versions/latest")).json()["version"] == "v-next"

    create(http, ws, "score", definition())
    names = [(c["name"], c["latest_version"]) for c in http.get(url(ws)).json()["items"]]
    assert names == [("score", "1"), ("train", "v-next")]
    assert http.post(url(ws, "/train/archive")).status_code == 204
    assert [c["name"] for c in http.get(url(ws)).json()["items"]] == ["score"]
    archived = http.get(url(ws), params={"include_archived": True}).json()["items"]
    assert [(c["name"], c["archived"]) for c in archived] == [("score", False), ("train", True)]
    assert http.post(url(ws, "/train/restore")).status_code == 204

    missing = problem(http.get(url(ws, "/nope/versions/1")), 404)
    assert (missing["code"], missing["field"]) == ("component_not_found", "name")
    gone = problem(http.get(url(ws, "/train/versions/99")), 404)
    assert (gone["code"], gone["field"]) == ("component_version_not_found", "version")


def test_the_environment_is_pinned_when_the_version_is_made(http: httpx.Client, ws: str) -> None:
    envs = f"/api/v1/workspaces/{ws}/environments/train-env/versions"
    assert http.post(envs, json={"pip_requirements": ["six==1.17.0"]}).status_code == 201
    made = create(http, ws, "train", definition(environment="azureml:train-env@latest")).json()
    assert made["environment"] == "azureml:train-env:1"
    assert http.post(envs, json={"pip_requirements": ["packaging"]}).status_code == 201
    later = http.get(url(ws, "/train/versions/1")).json()
    assert later["environment"] == "azureml:train-env:1"  # still the version it was made with
    assert later["definition_hash"] == made["definition_hash"]
    newer = create(http, ws, "train", definition(environment="azureml:train-env@latest")).json()
    assert newer["environment"] == "azureml:train-env:2"
    assert newer["definition_hash"] != made["definition_hash"]  # other packages

    inline = {"python": "3.11", "pip_requirements": ["six==1.17.0"]}
    made_inline = create(http, ws, "inline_env", definition(environment=inline)).json()
    assert made_inline["environment"].startswith("azureml:CliV2AnonymousEnvironment:")


def test_the_definition_hash_covers_what_runs_and_nothing_else(http: httpx.Client, ws: str) -> None:
    base = create(http, ws, "a", definition()).json()["definition_hash"]
    renamed = create(
        http,
        ws,
        "b",
        definition(display_name="B", description="other words", tags={"x": "y"}, version="3"),
    ).json()["definition_hash"]
    assert renamed == base  # names, versions, descriptions and tags do not change what runs
    described = definition()
    described["inputs"]["data"]["description"] = "the training table"
    assert create(http, ws, "c", described).json()["definition_hash"] == base
    for changed in (
        definition(command=COMMAND + " --verbose"),
        definition(is_deterministic=False),
        definition(environment="azureml:shipyard-sklearn:1"),
        definition(resources={"instance_count": 2}),
        definition(outputs={"model": {"type": "custom_model"}}),
    ):
        assert create(http, ws, "d", changed).json()["definition_hash"] != base
    stricter = definition()
    stricter["inputs"]["epochs"]["max"] = 50
    assert create(http, ws, "d", stricter).json()["definition_hash"] != base


# -- bad input ------------------------------------------------------------------------------


def _with_input(name: str, declaration: Any) -> dict[str, Any]:
    body = definition()
    body["inputs"][name] = declaration
    return body


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("min on a string", _with_input("s", {"type": "string", "min": 1}), "inputs.s.min",
     "invalid_combination"),
    ("max on a boolean", _with_input("b", {"type": "boolean", "max": 1}), "inputs.b.max",
     "invalid_combination"),
    ("enum on a number", _with_input("n", {"type": "number", "enum": [1, 2]}), "inputs.n.enum",
     "invalid_combination"),
    ("mode on a string", _with_input("s", {"type": "string", "mode": "download"}),
     "inputs.s.mode", "invalid_combination"),
    ("eval mode on a folder", _with_input("d", {"type": "uri_folder", "mode": "eval_mount"}),
     "inputs.d.mode", "invalid_combination"),
    ("unknown mode", _with_input("d", {"type": "uri_file", "mode": "rw_mount"}),
     "inputs.d.mode", "invalid_field"),
    ("default above max", _with_input("n", {"type": "integer", "max": 5, "default": 6}),
     "inputs.n.default", "out_of_range"),
    ("default below min", _with_input("n", {"type": "number", "min": 0.5, "default": 0.1}),
     "inputs.n.default", "out_of_range"),
    ("default not in enum", _with_input("s", {"type": "string", "enum": ["a"], "default": "b"}),
     "inputs.s.default", "not_in_enum"),
    ("default of the wrong type", _with_input("n", {"type": "integer", "default": "ten"}),
     "inputs.n.default", "invalid_value"),
    ("a fractional integer bound", _with_input("n", {"type": "integer", "min": 1.5}),
     "inputs.n.min", "invalid_value"),
    ("min above max", _with_input("n", {"type": "number", "min": 2, "max": 1}), "inputs.n.max",
     "invalid_range"),
    ("an empty enum", _with_input("s", {"type": "string", "enum": []}), "inputs.s.enum",
     "invalid_field"),
    ("no type", _with_input("s", {"default": "x"}), "inputs.s.type", "missing_field"),
    ("an unknown type", _with_input("s", {"type": "float"}), "inputs.s.type", "invalid_type"),
    ("an unknown key", _with_input("s", {"type": "string", "secret": True}), "inputs.s.secret",
     "unknown_field"),
    ("optional not a boolean", _with_input("s", {"type": "string", "optional": "maybe"}),
     "inputs.s.optional", "invalid_field"),
    ("a reserved input name", _with_input("PATH", {"type": "string"}), "inputs.PATH",
     "reserved_name"),
    ("a bad input name", _with_input("2fast", {"type": "string"}), "inputs.2fast",
     "invalid_name"),
    ("names differing in case", _with_input("Epochs", {"type": "integer"}), "inputs.Epochs",
     "duplicate_name"),
    ("a primitive output", definition(outputs={"model": {"type": "integer"}}),
     "outputs.model.type", "invalid_type"),
    ("an output without a type", definition(outputs={"model": {"mode": "upload"}}),
     "outputs.model.type", "missing_field"),
    ("an output with a path", definition(outputs={"model": {"type": "uri_folder",
                                                            "path": "x"}}),
     "outputs.model.path", "unknown_field"),
    ("a required input in $[[ ]]", definition(
        command="train $[[--epochs ${{inputs.epochs}}]] ${{inputs.data}} ${{outputs.model}}"),
     "command", "required_input_in_optional_fragment"),
    ("an undeclared input", definition(command="train ${{inputs.nope}}"), "command",
     "undefined_reference"),
    ("an undeclared output", definition(command="train ${{outputs.nope}}"), "command",
     "undefined_reference"),
    ("an unknown expression", definition(command="train ${{secrets.key}}"), "command",
     "invalid_expression"),
    ("an unclosed $[[", definition(command="train $[[--lr ${{inputs.lr}}"), "command",
     "invalid_field"),
    ("no command", {k: v for k, v in definition().items() if k != "command"}, "command",
     "missing_field"),
    ("no environment", {k: v for k, v in definition().items() if k != "environment"},
     "environment", "missing_field"),
    ("a pipeline component with a command", definition(type="pipeline"), "command",
     "unknown_field"),
    ("a parallel component", definition(type="parallel"), "type",
     "unsupported_component_type"),
    ("a float version", definition(version=1.1), "version", "invalid_version"),
    ("latest as a version", definition(version="latest"), "version", "invalid_version"),
    ("an unknown field", definition(jobs={}), "jobs", "unknown_field"),
    ("is_deterministic not a boolean", definition(is_deterministic="sometimes"),
     "is_deterministic", "invalid_field"),
    ("a distribution without a type", definition(distribution={"process_count": 2}),
     "distribution.type", "invalid_field"),
    ("zero instances", definition(resources={"instance_count": 0}),
     "resources.instance_count", "invalid_field"),
    ("a code path", definition(code="./src"), "code", "invalid_code"),
    ("additional_includes over REST", definition(additional_includes=["../lib"]),
     "additional_includes", "additional_includes_not_folded"),
    ("another name in the body", definition(name="other"), "name", "name_mismatch"),
    ("an environment that is not a reference", definition(environment="not a ref!"),
     "environment", "invalid_reference"),
    ("an input declared as a word", definition(inputs={"lr": "number"}), "inputs.lr",
     "invalid_field"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_definitions_are_400s_naming_the_field(
    http: httpx.Client, ws: str, body: dict[str, Any], field: str, code: str
) -> None:
    refused = problem(create(http, ws, "train", body), 400)
    assert (refused["field"], refused["code"]) == (field, code), refused
    assert http.get(url(ws, "/train/versions")).status_code == 404  # nothing was made


def test_empty_inputs_and_outputs_are_none(http: httpx.Client, ws: str) -> None:
    body = {"command": "echo hi", "environment": "azureml:shipyard-minimal:1"}
    made = create(http, ws, "hello", {**body, "inputs": None, "outputs": None})
    assert made.status_code == 201, made.text
    assert (made.json()["inputs"], made.json()["outputs"]) == ({}, {})


def test_references_that_do_not_resolve_are_404s_naming_the_field(
    http: httpx.Client, ws: str
) -> None:
    unknown_env = problem(create(http, ws, "train", definition(environment="azureml:nope:1")), 404)
    assert unknown_env["field"] == "environment"
    not_uploaded = problem(create(http, ws, "train", definition(code="sha256:" + "a" * 64)), 404)
    assert (not_uploaded["code"], not_uploaded["field"]) == ("code_not_found", "code")
    bad_name = problem(create(http, ws, "Train", definition()), 400)
    assert (bad_name["code"], bad_name["field"]) == ("invalid_name", "name")
    dashed = problem(create(http, ws, "my-train", definition()), 400)
    assert dashed["field"] == "name"


# -- the SDK: local code with additional_includes, steps --------------------------------------

TRAIN_YAML = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: train
display_name: Train
version: 1
command: >-
  python train.py --data ${{inputs.data}} $[[--lr ${{inputs.lr}}]]
  --model ${{outputs.model}}
code: ./src
additional_includes:
  - ../shared/utils.py
  - ../shared/configs
environment: azureml:shipyard-minimal@latest
inputs:
  data:
    type: uri_folder
  lr:
    type: number
    optional: true
    min: 0
    max: 1
outputs:
  model:
    type: mlflow_model
"""


def project(root: Path) -> Path:
    """A component folder with its code, and shared files its additional_includes name."""
    (root / "train" / "src").mkdir(parents=True)
    (root / "train" / "src" / "train.py").write_text("print('train')\n")
    (root / "train" / "src" / "scratch.csv").write_text("big,data\n")
    (root / "train" / "src" / ".amlignore").write_text("*.csv\n")
    (root / "shared" / "configs").mkdir(parents=True)
    (root / "shared" / "utils.py").write_text("def helper(): ...\n")
    (root / "shared" / "configs" / "train.json").write_text('{"seed": 1}\n')
    (root / "train" / "train.yml").write_text(TRAIN_YAML)
    return root / "train" / "train.yml"


def test_a_local_code_folder_and_its_additional_includes_become_one_snapshot(
    admin: Client, tmp_path: Path
) -> None:
    ws = admin.workspaces.create(unique()).name
    path = project(tmp_path)
    made = admin.workspace(ws).components.create(path)
    assert (made.name, made.version, made.display_name) == ("train", "1", "Train")

    # The snapshot is exactly the folder Azure ML would stage: the code folder (its
    # ignore rules applied) with the includes copied beside it.
    staged = tmp_path / "staged"
    (staged / "configs").mkdir(parents=True)
    (staged / "train.py").write_text("print('train')\n")
    (staged / ".amlignore").write_text("*.csv\n")
    (staged / "utils.py").write_text("def helper(): ...\n")
    (staged / "configs" / "train.json").write_text('{"seed": 1}\n')
    expected = hash_local(staged, exclude=ignore_rule(staged))
    assert made.code == f"sha256:{expected.digest}"
    assert {entry.path for _, entry in expected.files} == {
        ".amlignore",
        "train.py",
        "utils.py",
        "configs/train.json",
    }

    data = load_yaml_file(path).data
    again = admin.workspace(ws).components.create_from_spec(
        {**data, "version": None}, base_dir=path.parent
    )  # the same code again: the snapshot is there already, nothing is sent
    assert (again.version, again.code) == ("2", made.code)
    assert again.definition_hash == made.definition_hash

    # A job can run from the same snapshot: it is an ordinary code upload.
    jobs = admin.workspace(ws).jobs._submitted
    job = jobs.create({"command": "ls", "code": made.code})
    assert sorted(jobs.code_files(job.name)) == [
        ".amlignore",
        "configs/train.json",
        "train.py",
        "utils.py",
    ]


def test_include_errors_name_the_entry_and_the_line(admin: Client, tmp_path: Path) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    path = project(tmp_path)
    path.write_text(TRAIN_YAML.replace("../shared/configs", "../shared/missing"))
    with pytest.raises(YamlFileError) as missing:
        ws.components.create(path)
    assert (missing.value.field, missing.value.line) == ("additional_includes.1", 12)
    assert missing.value.code == "path_not_found"

    (tmp_path / "train" / "src" / "utils.py").write_text("# clashes\n")
    path.write_text(TRAIN_YAML)
    with pytest.raises(YamlFileError) as clash:
        ws.components.create(path)
    assert (clash.value.field, clash.value.code) == ("additional_includes.0", "include_conflict")

    (tmp_path / "train" / "src" / "utils.py").unlink()
    path.write_text(TRAIN_YAML.replace("max: 1", "max: 1\n    enum: [a]"))
    with pytest.raises(YamlFileError) as refused:  # from the server, placed in the file
        ws.components.create(path)
    assert (refused.value.field, refused.value.line) == ("inputs.lr.enum", 22)


def test_components_are_callable_steps(admin: Client, tmp_path: Path) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    train = load_component(project(tmp_path))
    assert train.is_local
    assert train.name == "train"
    trained = train(data=Input(type="uri_folder", path="azureml:customers@latest"), lr=0.5)
    assert trained.inputs["lr"] == 0.5
    binding = trained.outputs.model
    assert (binding.type, binding.output) == ("mlflow_model", "model")
    assert binding.expression("train_step") == "${{parent.jobs.train_step.outputs.model}}"
    with pytest.raises(InvalidInputError) as unnamed:
        binding.expression()
    assert unnamed.value.code == "unnamed_step"
    trained.name = "fit"
    assert binding.expression() == "${{parent.jobs.fit.outputs.model}}"
    assert list(trained.outputs) == ["model"]
    with pytest.raises(AttributeError, match="its outputs: model"):
        _ = trained.outputs.metrics

    with pytest.raises(InvalidInputError) as unknown:
        train(data="azureml:customers:1", learning_rate=0.1)
    assert (unknown.value.field, unknown.value.code) == ("inputs.learning_rate", "unknown_input")
    with pytest.raises(InvalidInputError) as too_big:
        train(data="azureml:customers:1", lr=3)
    assert (too_big.value.field, too_big.value.code) == ("inputs.lr", "out_of_range")
    with pytest.raises(InvalidInputError) as wrong_type:
        train(data=Input(type="uri_file", path="azureml:customers:1"))
    assert wrong_type.value.field == "inputs.data.type"
    # Bindings to pipeline inputs are checked by the server at submit.
    assert train(lr="${{parent.inputs.lr}}").inputs == {"lr": "${{parent.inputs.lr}}"}

    # A loaded component registers as it is; a registered one loads from the workspace.
    made = ws.components.create(train)
    registered = load_component(ws.components.get("train", label="latest"))
    assert (registered.source, registered.is_local) == (made.id, False)
    assert registered.spec.inputs["lr"].optional is True
    assert ws.components.load("azureml:train@latest").source == "azureml:train:1"
    assert ws.components.load("train:1").spec.command == made.command
    scored = registered(data="azureml:customers:1").outputs.model
    assert scored.step.component is registered

    bad = tmp_path / "bad.yml"
    bad.write_text(TRAIN_YAML.replace("type: number", "type: number\n    enum: [x]"))
    with pytest.raises(YamlFileError) as bad_file:
        load_component(bad)
    assert (bad_file.value.field, bad_file.value.line) == ("inputs.lr.enum", 19)


def test_sdk_get_list_update_archive(admin: Client) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    ws.components.create({"name": "score", **definition()})
    ws.components.create({"name": "score", **definition(version="2")})
    assert ws.components.get("score").version == "2"
    assert ws.components.get("score", "1").version == "1"
    assert [c.name for c in ws.components.list()] == ["score"]
    assert [v.version for v in ws.components.list("score")] == ["2", "1"]
    assert ws.components.update("score", "1", description="old").description == "old"
    ws.components.archive("score", "2")
    assert ws.components.get("score", label="latest").version == "1"
    ws.components.restore("score", "2")
    ws.components.archive("score")
    assert list(ws.components.list()) == []
    ws.components.restore("score")
    with pytest.raises(InvalidInputError):
        ws.components.get("score", "1", label="latest")
    with pytest.raises(NotFoundError):
        ws.components.get("nope")


# -- resolve: what pipelines call -----------------------------------------------------------


def test_resolve_accepts_every_reference_form(
    http: httpx.Client, ws: str, components: Components, admin_principal: Principal
) -> None:
    first = create(http, ws, "train", definition()).json()
    second = create(http, ws, "train", definition(command=COMMAND + " -v")).json()
    for ref, version in [
        ("azureml:train:1", "1"),
        ("azureml:train@latest", "2"),
        ("shipyard:train:1", "1"),
        ("shipyard:train@latest", "2"),
        ("train:1", "1"),
        ("train@latest", "2"),
        ("azureml:train", "2"),
    ]:
        resolved = components.resolve(admin_principal, ws, ref, field="jobs.fit.component")
        assert (resolved.name, resolved.version) == ("train", version), ref
    resolved = components.resolve(admin_principal, ws, "azureml:train:1")
    assert resolved.definition_hash == first["definition_hash"] != second["definition_hash"]
    assert resolved.ref == "azureml:train:1"
    assert resolved.spec["environment"]["name"] == "shipyard-minimal"
    assert resolved.spec["environment"]["spec"]["pip"]  # the environment itself, pinned
    assert resolved.component.definition_hash() == resolved.definition_hash
    bound = bind_inputs(resolved.component, {"data": "azureml:d:1"}, field="jobs.fit.inputs")
    assert bound == {
        "data": {"type": "uri_folder", "path": "azureml:d:1"},
        "epochs": 10,
        "lr": None,
        "solver": "lbfgs",
    }

    http.post(url(ws, "/train/versions/2/archive"))
    assert components.resolve(admin_principal, ws, "train@latest").version == "1"
    assert components.resolve(admin_principal, ws, "train:2").version == "2"  # still usable


@pytest.mark.parametrize(
    ("ref", "error", "code"),
    [
        # Registry components resolve in their registry (tests/api/test_registry_components.py).
        ("azureml://registries/shared/components/train/versions/1", NotFoundError,
         "registry_not_found"),
        ("azureml://registries/azureml/components/train/labels/latest", NotFoundError,
         "registry_not_found"),
        ("azureml:train:9", NotFoundError, "component_version_not_found"),
        ("azureml:nope@latest", NotFoundError, "component_not_found"),
        ("azureml:train@stable", InvalidInputError, "invalid_label"),
        ("./train.yml", InvalidInputError, "invalid_reference"),
        ("", InvalidInputError, "invalid_reference"),
    ],
)  # fmt: skip
def test_resolve_refuses_naming_the_field(
    http: httpx.Client,
    ws: str,
    components: Components,
    admin_principal: Principal,
    ref: str,
    error: type[ShipyardError],
    code: str,
) -> None:
    create(http, ws, "train", definition())
    with pytest.raises(error) as refused:
        components.resolve(admin_principal, ws, ref, field="jobs.fit.component")
    assert (refused.value.code, refused.value.field) == (code, "jobs.fit.component")


def test_resolve_pins_an_inline_definition_without_registering_it(
    http: httpx.Client, ws: str, components: Components, admin_principal: Principal
) -> None:
    registered = create(http, ws, "train", definition()).json()
    inline = components.resolve(admin_principal, ws, definition(), field="jobs.fit.component")
    assert inline.name == ANONYMOUS_NAME
    assert inline.definition_hash == registered["definition_hash"]  # same definition
    assert inline.version == inline.definition_hash[:32]
    assert inline.spec["environment"]["version"] == "1"
    assert [c["name"] for c in http.get(url(ws)).json()["items"]] == ["train"]
    named = components.resolve(admin_principal, ws, definition(name="fit"))
    assert named.name == "fit"

    bad = definition()
    bad["inputs"]["epochs"]["min"] = 500
    with pytest.raises(InvalidInputError) as refused:
        components.resolve(admin_principal, ws, bad, field="jobs.fit.component")
    assert refused.value.field == "jobs.fit.component.inputs.epochs.max"
    with pytest.raises(NotFoundError) as no_env:
        components.resolve(
            admin_principal, ws, definition(environment="azureml:nope:1"), field="jobs.x.component"
        )
    assert no_env.value.field == "jobs.x.component.environment"


def test_resolve_needs_read_access_to_the_workspace(
    server: RunningServer, http: httpx.Client, ws: str, components: Components
) -> None:
    create(http, ws, "train", definition())
    name = unique("user")
    assert http.post("/api/v1/users", json={"name": name}).status_code == 201
    with server.db.read() as session:
        row = user_store.get_user_by_name(session, name)
        assert row is not None
        outsider = Principal(row.id, row.name, is_admin=False)
    with pytest.raises(ShipyardError) as hidden:
        components.resolve(outsider, ws, "azureml:train:1")
    assert hidden.value.status in (403, 404)
