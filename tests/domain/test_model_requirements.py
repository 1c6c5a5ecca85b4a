"""An MLflow model's requirements.txt as the pip list of the environment it is served in."""

from __future__ import annotations

import pytest

from shipyard.domain.model_requirements import MAX_REQUIREMENTS, pip_requirements


def test_mlflow_becomes_the_skinny_client_and_the_rest_stays_pinned() -> None:
    text = (
        "mlflow==3.17.2\n"
        "cloudpickle==3.1.1\n"
        "# a comment\n"
        "\n"
        "numpy==2.3.1  # trailing comment\n"
        "scikit-learn==1.9.1\n"
        "skops==0.16.0\n"
        'pandas==3.1.1 ; python_version >= "3.10"\n'
    )
    assert pip_requirements(text) == (
        "mlflow-skinny==3.17.2",
        "cloudpickle==3.1.1",
        "numpy==2.3.1",
        "scikit-learn==1.9.1",
        "skops==0.16.0",
        'pandas==3.1.1 ; python_version >= "3.10"',
    )


def test_extras_of_mlflow_are_dropped() -> None:
    assert pip_requirements("mlflow[extras]==3.17.2\n") == ("mlflow-skinny==3.17.2",)


@pytest.mark.parametrize(
    "line",
    [
        "-r other.txt",
        "--index-url https://example.org/simple",
        "-e .",
        "./local/package",
        "/abs/wheel.whl",
        "pkg @ https://example.org/pkg.whl",
        "pkg==1.0 --hash=sha256:abc",
        "C:\\\\wheels\\\\pkg.whl",
    ],
)
def test_anything_that_points_pip_elsewhere_makes_the_file_unusable(line: str) -> None:
    assert pip_requirements(f"numpy==2.3.1\n{line}\n") is None


def test_an_empty_or_huge_file_is_unusable() -> None:
    assert pip_requirements("# nothing\n\n") is None
    many = "".join(f"pkg{n}==1.0\n" for n in range(MAX_REQUIREMENTS + 1))
    assert pip_requirements(many) is None
