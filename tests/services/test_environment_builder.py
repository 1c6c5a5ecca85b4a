"""The environment builder with real uv builds of small packages from the package index: a
build, a cache hit that runs no uv, one build for concurrent callers (two builders on one
folder, as two servers would be), failed builds kept with their log, missing Pythons, Docker
images without an engine, and least-recently-used eviction under a tiny cap.

Every build goes into the test's own data folder; uv's package cache is the machine's, so
a package is downloaded once. Each build takes a second or two.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.compute.containers import ContainerEngine
from shipyard.compute.environments import (
    BuiltEnvironment,
    EnvironmentBuilder,
    folder_size,
)
from shipyard.domain.environments import EnvironmentSpec, parse_spec
from shipyard.domain.errors import EnvironmentBuildError, InvalidInputError
from shipyard.store import environments as store
from shipyard.store import migrate
from shipyard.store.database import Database

pytestmark = pytest.mark.slow

SIX = parse_spec(pip_requirements=["six==1.17.0"])


@pytest.fixture(scope="module")
def db(module_database_url: str) -> Iterator[Database]:
    database = Database(module_database_url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def builder(db: Database, root: Path, **options: object) -> EnvironmentBuilder:
    values: dict[str, object] = {"max_bytes": 10**12, **options}
    return EnvironmentBuilder(db, root, **values)  # type: ignore[arg-type]


def run_python(built: BuiltEnvironment, code: str) -> str:
    result = subprocess.run(
        [str(built.python), "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def test_a_spec_builds_into_a_venv_and_a_second_ensure_is_a_cache_hit(
    db: Database, tmp_path: Path
) -> None:
    lines: list[str] = []
    root = tmp_path / "environments"
    built = builder(db, root).ensure(SIX, lines.append)

    assert built.cached is False
    assert built.prefix == root / built.spec_hash
    assert built.bin_dir == built.prefix / "bin"
    assert built.python == built.bin_dir / "python"
    # Built elsewhere and renamed into place: the venv works from its final folder.
    assert run_python(built, "import six, sys; print(six.__version__, sys.prefix)") == (
        f"1.17.0 {built.prefix}"
    )
    assert any("six==1.17.0" in line for line in lines), lines
    assert list((root / ".tmp").iterdir()) == []
    record = builder(db, root).status(built.spec_hash)
    assert record.status == "ready"
    assert record.python == "3.11"
    assert record.size == folder_size(built.prefix) > 0
    assert "six==1.17.0" in record.log
    assert record.build_seconds is not None

    # A builder whose uv does not exist: a cache hit must not need it.
    again = builder(db, root, uv="/nonexistent/uv").ensure(SIX, lines.append)
    assert again == BuiltEnvironment(
        built.spec_hash, built.prefix, built.python, built.bin_dir, cached=True
    )
    assert lines[-1].endswith("is built (cached)")
    assert builder(db, root).status(built.spec_hash).last_used_at >= record.last_used_at  # type: ignore[operator]


def test_concurrent_ensures_of_one_spec_build_it_once(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "environments"
    spec = parse_spec(pip_requirements=["packaging==24.2"])
    results: list[BuiltEnvironment] = []
    logs: list[list[str]] = [[], [], []]
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def ensure(index: int) -> None:
        try:
            start.wait()
            # One builder object each, as separate server processes would have.
            results.append(builder(db, root).ensure(spec, logs[index].append))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ensure, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(r.cached for r in results) == [False, True, True]
    assert len({r.prefix for r in results}) == 1
    builds = [log for log in logs if any(line.startswith("$ uv venv") for line in log)]
    assert len(builds) == 1, logs


def test_a_failed_build_keeps_its_log_raises_and_is_retried(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "environments"
    spec = parse_spec(pip_requirements=["shipyard-no-such-package-a8f3==1.0"])
    with pytest.raises(EnvironmentBuildError) as caught:
        builder(db, root).ensure(spec)
    error = caught.value
    assert error.code == "environment_build_failed"
    assert error.status == 422
    assert "uv pip install failed" in error.detail
    assert "shipyard-no-such-package-a8f3" in error.log_tail
    assert "uv venv" not in error.log_tail  # the failing command's own output
    digest = spec.spec_hash(builder(db, root).platform)
    record = builder(db, root).status(digest)
    assert record.status == "failed"
    assert record.error is not None
    assert "shipyard-no-such-package-a8f3" in record.error
    assert "$ uv pip install" in record.log
    assert "shipyard-no-such-package-a8f3" in record.log
    assert not (root / digest).exists()
    assert list((root / ".tmp").iterdir()) == []

    lines: list[str] = []
    with pytest.raises(EnvironmentBuildError):
        builder(db, root).ensure(spec, lines.append)  # not a remembered failure: built again
    assert any(line.startswith("$ uv pip install") for line in lines)


def test_a_python_the_machine_lacks_fails_the_build_listing_what_it_has(
    db: Database, tmp_path: Path
) -> None:
    with pytest.raises(EnvironmentBuildError) as caught:
        builder(db, tmp_path / "environments").ensure(parse_spec(python="3.4"))
    assert caught.value.code == "python_unavailable"
    assert "Python 3.4 is not on this machine" in caught.value.detail
    assert "present: " in caught.value.detail
    assert "3.11" in caught.value.detail


def test_image_environments_are_refused_naming_the_field_without_an_engine(
    db: Database, tmp_path: Path
) -> None:
    no_engine = builder(db, tmp_path, engine=None)
    image = parse_spec(image="python:3.11-slim")
    with pytest.raises(InvalidInputError) as caught:
        no_engine.ensure(image)
    assert (caught.value.code, caught.value.field) == ("docker_unavailable", "image")
    assert "no Docker engine" in caught.value.detail
    with pytest.raises(InvalidInputError) as caught:
        no_engine.check_buildable(parse_spec(build={"path": "ctx"}), "environment")
    assert caught.value.field == "environment.build"
    assert not (tmp_path / ".tmp").exists()  # nothing was attempted


def test_an_engine_command_that_does_not_answer_is_no_engine(db: Database, tmp_path: Path) -> None:
    fake = tmp_path / "docker"  # a docker command whose engine does not answer
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    assert ContainerEngine.find("auto", {"PATH": str(tmp_path / "empty")}) is None
    assert ContainerEngine.find("none", {"PATH": str(tmp_path)}) is None
    found = ContainerEngine.find("auto", {"PATH": str(tmp_path)})
    assert found is not None
    assert not found.answers()
    with pytest.raises(InvalidInputError) as caught:
        builder(db, tmp_path, engine=found).check_buildable(
            parse_spec(image="python:3.11-slim"), "environment"
        )
    assert (caught.value.code, caught.value.field) == ("docker_unavailable", "environment.image")


def test_pip_options_are_refused_at_build_when_the_policy_forbids_them(
    db: Database, tmp_path: Path
) -> None:
    allowed = parse_spec(pip_requirements=["-r /etc/passwd"], allow_pip_options=True)
    with pytest.raises(InvalidInputError) as caught:
        builder(db, tmp_path).ensure(allowed)
    assert (caught.value.code, caught.value.field) == ("requirement_refused", "pip_requirements.0")


def test_least_recently_used_builds_are_evicted_past_the_cap(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "environments"
    # Three specs with the same content (so the same size) and different hashes.
    specs = [
        parse_spec(pip_requirements=[f"six==1.17.0; python_version >= '3.{minor}'"])
        for minor in (6, 7, 8)
    ]
    first = builder(db, root).ensure(specs[0])
    size = folder_size(first.prefix)
    cap = int(size * 2.5)  # room for two
    b = builder(db, root, max_bytes=cap)
    second = b.ensure(specs[1])
    assert b.ensure(specs[0]).cached  # used again: now the second is the least recent
    third = b.ensure(specs[2])
    assert not second.prefix.exists()
    assert first.prefix.is_dir()
    assert third.prefix.is_dir()
    assert b.status(second.spec_hash).status == "not_built"
    assert b.ensure(specs[1]).cached is False  # comes back when needed, and the LRU goes
    assert not first.prefix.exists()

    # A build in use (held by a running job) is never evicted, even past the cap.
    tiny = builder(db, root, max_bytes=1)
    with tiny.hold(third.spec_hash):
        tiny.ensure(specs[0])
        assert third.prefix.is_dir()
    assert third.spec_hash in tiny.evict()
    assert not third.prefix.exists()
    assert list((root / ".trash").iterdir()) == []


def test_a_build_left_building_by_a_dead_process_reads_as_interrupted(
    db: Database, tmp_path: Path
) -> None:
    b = builder(db, tmp_path)
    digest = "f" * 64
    with db.write() as session:
        store.start_build(session, digest, EnvironmentSpec().to_json(), "3.11")
    record = b.status(digest)
    assert record.status == "failed"
    assert record.error == "the build was interrupted"
    with b.hold(digest):  # someone alive holds the hash's lock
        assert b.status(digest).status == "building"


def test_the_folder_size_counts_hard_links_once(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 1000)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "c").symlink_to(tmp_path / "a")
    assert folder_size(tmp_path) == 1000 + len(str(tmp_path / "a"))
