"""Environment specs: requirement lines checked and normalised, conda files, hashes,
references and the curated names (pure: no build here)."""

from __future__ import annotations

import pytest

from shipyard.domain.environments import (
    CURATED,
    BuildContext,
    EnvironmentRef,
    EnvironmentSpec,
    Platform,
    azure_curated,
    check_pip_policy,
    is_reserved,
    normalise_requirement,
    parse_conda,
    parse_environment_ref,
    parse_spec,
    requirement_lines,
)
from shipyard.domain.errors import InvalidInputError

LINUX = Platform("linux", "x86_64", "3.11")


def test_lines_are_trimmed_canonical_sorted_and_deduplicated() -> None:
    spec = parse_spec(
        pip_requirements=[
            "  Scikit_Learn >= 1.3 , <2  ",
            "six==1.17.0  # the one we test with",
            "",
            "# a comment",
            "requests[socks,security]>=2",
            "six == 1.17.0",
            'tomli; python_version < "3.11"',
        ]
    )
    assert spec.pip == (
        "requests[security,socks]>=2",
        "scikit-learn<2,>=1.3",
        "six==1.17.0",
        'tomli; python_version < "3.11"',
    )


BAD_LINES = [
    ("-r /etc/passwd", "a pip option"),
    ("--requirement=/etc/passwd", "a pip option"),
    ("--index-url http://evil.example/simple", "a pip option"),
    ("-i http://evil.example/simple", "a pip option"),
    ("--extra-index-url https://evil.example/simple", "a pip option"),
    ("-e .", "a pip option"),
    ("-f ./wheels", "a pip option"),
    ("--find-links /tmp", "a pip option"),
    ("--trusted-host evil.example", "a pip option"),
    ("-c constraints.txt", "a pip option"),
    ("six==1.17.0 --hash=sha256:abc", "a pip option"),
    ("git+https://github.com/example/pkg.git", "a URL"),
    ("git+ssh://git@github.com/example/pkg.git", "a URL"),
    ("https://evil.example/pkg-1.0.tar.gz", "a URL"),
    ("pkg @ https://evil.example/pkg-1.0-py3-none-any.whl", "a URL"),
    ("file:///etc/passwd", "a URL"),
    ("file:pkg", "a URL"),
    ("./local/pkg", "a local path"),
    ("../up", "a local path"),
    ("/abs/path/to/pkg", "a local path"),
    ("~/pkg", "a local path"),
    ("pkg-1.0-py3-none-any.whl", "a local path"),
    ("dist/pkg.tar.gz", "a local path"),
]


@pytest.mark.parametrize(("line", "kind"), BAD_LINES, ids=[line for line, _ in BAD_LINES])
def test_pip_options_urls_and_paths_are_refused_naming_the_line(line: str, kind: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(pip_requirements=["six==1.17.0", line])
    assert caught.value.code == "requirement_refused"
    assert caught.value.field == "pip_requirements.1"
    assert repr(line) in caught.value.detail
    assert kind in caught.value.detail
    assert "environment_allow_pip_options" in caught.value.detail


@pytest.mark.parametrize(("line", "kind"), BAD_LINES, ids=[line for line, _ in BAD_LINES])
def test_an_admin_may_allow_them(line: str, kind: str) -> None:
    spec = parse_spec(pip_requirements=[line], allow_pip_options=True)
    assert len(spec.pip) == 1
    with pytest.raises(InvalidInputError, match="requirement"):
        # A stored spec meets the policy in force when it is built.
        check_pip_policy(spec, allow_pip_options=False, field="pip_requirements")


@pytest.mark.parametrize(
    "line",
    [
        "six\n--index-url http://evil.example",
        "six\r-r /etc/passwd",
        "six\x00",
        "x" * 2001,
    ],
)
def test_a_line_cannot_smuggle_a_second_line_even_when_options_are_allowed(line: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(pip_requirements=[line], allow_pip_options=True)
    assert caught.value.code == "invalid_requirement"
    assert caught.value.field == "pip_requirements.0"


@pytest.mark.parametrize("line", ["six===", "not a requirement!", "six==1.0; python_versio > 3"])
def test_unparsable_lines_are_refused(line: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        normalise_requirement(line, allow_pip_options=False, field="f.3")
    assert (caught.value.code, caught.value.field) == ("invalid_requirement", "f.3")


def test_requirements_must_be_a_list_of_text() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(pip_requirements="six")
    assert caught.value.field == "pip_requirements"
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(pip_requirements=["six", 1.5])
    assert caught.value.field == "pip_requirements.1"
    with pytest.raises(InvalidInputError, match="at most"):
        parse_spec(pip_requirements=["six"] * 1001)


def test_a_conda_file_gives_python_and_pip_lines_channels_ignored() -> None:
    conda = {
        "name": "train",
        "channels": ["conda-forge", "defaults"],
        "dependencies": ["python=3.11", "pip=24.0", {"pip": ["pandas==2.2.3", "six"]}],
    }
    spec = parse_spec(conda_file=conda)
    assert spec == EnvironmentSpec(python="3.11", pip=("pandas==2.2.3", "six"))
    assert parse_conda({"dependencies": ["python==3.11.9", "pip"]}, field="c") == ("3.11.9", [])


@pytest.mark.parametrize(
    ("conda", "field", "code"),
    [
        ({"dependencies": ["python=3.11", "numpy=1.26"]}, "conda_file.dependencies.1", None),
        ({"dependencies": ["conda-forge::lightgbm"]}, "conda_file.dependencies.0", None),
        ({"dependencies": ["scikit-learn"]}, "conda_file.dependencies.0", None),
        ({"dependencies": [{"pip": ["six"], "conda": ["x"]}]}, "conda_file.dependencies.0", ""),
        ({"dependencies": [{"pip": ["-r /etc/passwd"]}]}, "conda_file.dependencies.0.pip.0", ""),
        ({"dependencies": ["python=3.10", "python=3.11"]}, "conda_file.dependencies.1", ""),
        ({"variables": {"A": "1"}}, "conda_file.variables", ""),
        ({"dependencies": "python=3.11"}, "conda_file.dependencies", ""),
        (["python=3.11"], "conda_file", ""),
    ],
)
def test_conda_packages_and_other_conda_features_are_refused(
    conda: object, field: str, code: str | None
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(conda_file=conda)
    assert caught.value.field == field
    if code is None:
        assert caught.value.code == "conda_package_refused"
        assert "- pip:" in caught.value.detail  # says how to fix it


def test_python_versions_are_checked() -> None:
    assert parse_spec(python="3.12").python == "3.12"
    assert parse_spec(python=" 3.11.9 ").python == "3.11.9"
    for bad in ("3", "2.7", "3.11.x", "python3.11", "", 3):
        with pytest.raises(InvalidInputError) as caught:
            parse_spec(python=bad)
        assert (caught.value.code, caught.value.field) == ("invalid_python", "python")
    with pytest.raises(InvalidInputError, match="quote the version"):
        parse_spec(python=3.10)
    with pytest.raises(InvalidInputError) as caught:
        parse_spec(python="3.12", conda_file={"dependencies": ["python=3.11"]})
    assert caught.value.field == "python"


def test_fields_that_do_not_go_together_are_refused_with_a_prefix() -> None:
    cases = [
        ({"conda_file": {}, "pip_requirements": []}, "environment.pip_requirements"),
        ({"image": "python:3.11", "build": {"path": "ctx"}}, "environment.build"),
        ({"os_type": "windows"}, "environment.os_type"),
        ({"image": "not an image!"}, "environment.image"),
        ({"build": {"path": ""}}, "environment.build"),
        ({"build": {"path": "ctx", "extra": 1}}, "environment.build"),
    ]
    for fields, field in cases:
        with pytest.raises(InvalidInputError) as caught:
            parse_spec(prefix="environment.", **fields)  # type: ignore[arg-type]
        assert caught.value.field == field, fields


def test_image_and_build_environments_are_kept_as_given() -> None:
    spec = parse_spec(image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest")
    assert spec.needs_engine
    assert spec.image is not None
    built = parse_spec(build={"path": "docker-context"})
    assert built.build == BuildContext("docker-context", "Dockerfile")
    assert EnvironmentSpec.from_json(built.to_json()) == built
    assert not parse_spec(pip_requirements=["six"]).needs_engine


def test_the_hash_names_the_normalised_spec_on_one_platform() -> None:
    first = parse_spec(pip_requirements=["six==1.17.0", "packaging"])
    same = parse_spec(conda_file={"dependencies": [{"pip": [" packaging", "Six == 1.17.0"]}]})
    assert first.spec_hash(LINUX) == same.spec_hash(LINUX)
    assert len(first.spec_hash(LINUX)) == 64
    # An unset Python is the platform's: the same build as naming it.
    named = parse_spec(python="3.11", pip_requirements=["packaging", "six==1.17.0"])
    assert named.spec_hash(LINUX) == first.spec_hash(LINUX)
    assert named.definition_hash() != first.definition_hash()  # definitions do differ
    other = {
        parse_spec(python="3.12", pip_requirements=["packaging", "six==1.17.0"]).spec_hash(LINUX),
        first.spec_hash(Platform("darwin", "arm64", "3.11")),
        first.spec_hash(Platform("linux", "x86_64", "3.12")),
        parse_spec(pip_requirements=["six==1.17.0"]).spec_hash(LINUX),
    }
    assert first.spec_hash(LINUX) not in other
    assert len(other) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("azureml:train-env:3", EnvironmentRef("train-env", "3")),
        ("azureml:train-env@latest", EnvironmentRef("train-env", label="latest")),
        ("shipyard:train-env:3", EnvironmentRef("train-env", "3")),
        ("train-env:v2.1", EnvironmentRef("train-env", "v2.1")),
        ("train-env@latest", EnvironmentRef("train-env", label="latest")),
        ("train-env", EnvironmentRef("train-env", label="latest")),
        ("azureml:train-env", EnvironmentRef("train-env", label="latest")),
        (
            "azureml:/subscriptions/s/resourceGroups/rg/providers/"
            "Microsoft.MachineLearningServices/workspaces/w/environments/train-env/versions/4",
            EnvironmentRef("train-env", "4"),
        ),
        (
            "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
            EnvironmentRef("sklearn-1.5", label="latest", registry="azureml"),
        ),
        (
            "azureml://registries/azureml/environments/sklearn-1.5/versions/21",
            EnvironmentRef("sklearn-1.5", "21", registry="azureml"),
        ),
    ],
)
def test_references_parse(text: str, expected: EnvironmentRef) -> None:
    assert parse_environment_ref(text, field="environment") == expected


@pytest.mark.parametrize(
    "text",
    ["azureml:a:b:c", "train-env@stable", "", "a b:1", "azureml:", "x/y:1"],
)
def test_bad_references_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_environment_ref(text, field="environment")
    assert caught.value.field == "environment"


def test_azure_curated_names_map_to_the_closest_curated_environment() -> None:
    sklearn = azure_curated("AzureML-sklearn-1.5", field="environment")
    assert sklearn is not None
    assert sklearn.name == "shipyard-sklearn"
    old = azure_curated("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", field="environment")
    assert old is sklearn
    registry = azure_curated("sklearn-1.5", field="environment", registry=True)
    assert registry is sklearn
    minimal = azure_curated("AzureML-minimal-ubuntu20.04-py38-cpu", field="e")
    assert minimal is not None
    assert minimal.name == "shipyard-minimal"
    assert azure_curated("my-env", field="environment") is None
    for name in ("AzureML-ACPT-pytorch-2.2-cuda12.1", "AzureML-tensorflow-2.16-cuda12"):
        with pytest.raises(InvalidInputError) as caught:
            azure_curated(name, field="environment")
        assert caught.value.code == "curated_environment_unsupported"
        assert "shipyard-sklearn" in caught.value.detail
        assert caught.value.field == "environment"


def test_curated_names_are_reserved_and_their_specs_are_valid() -> None:
    assert {env.name for env in CURATED} >= {"shipyard-minimal", "shipyard-sklearn"}
    for env in CURATED:
        assert is_reserved(env.name)
        assert parse_spec(pip_requirements=list(env.spec.pip)) == env.spec
        assert any(line.startswith("mlflow") for line in env.spec.pip)
    assert is_reserved("AzureML-anything")
    assert is_reserved("azureml-x")
    assert not is_reserved("my-env")


def test_a_requirements_file_becomes_lines() -> None:
    text = "# pinned\nsix==1.17.0\n\n  packaging  \n"
    assert requirement_lines(text) == ["six==1.17.0", "  packaging  "]
