"""``clean_relative``: what a path from a client may look like once cleaned. The refusals are
also run against both storages in test_conformance.py."""

from __future__ import annotations

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.storage.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, clean_relative


@pytest.mark.parametrize(
    ("given", "clean"),
    [
        ("", ""),
        (".", ""),
        ("./", ""),
        ("a", "a"),
        ("a/", "a"),
        ("./a", "a"),
        ("a//b/./c", "a/b/c"),
        ("a%20b/c", "a b/c"),
        ("%C3%A9t%C3%A9", "été"),
        ("...", "..."),  # three dots is a name, not a way up
        ("a/..b/c..", "a/..b/c.."),
        ("x" * MAX_SEGMENT_BYTES, "x" * MAX_SEGMENT_BYTES),
    ],
)
def test_accepted_paths_are_normalised(given: str, clean: str) -> None:
    assert clean_relative(given) == clean


@pytest.mark.parametrize("given", ["a%2541", "100%", "50%25/x", "%252541b", "a b/%C3%A9"])
def test_cleaning_twice_changes_nothing(given: str) -> None:
    # Layers above the storage clean paths too; a second pass must not decode further.
    once = clean_relative(given)
    assert clean_relative(once) == once


def test_the_longest_accepted_path() -> None:
    segment = "y" * 100
    path = "/".join([segment] * 10) + "/" + "z" * (MAX_PATH_BYTES - 1010)
    assert len(path.encode()) == MAX_PATH_BYTES
    assert clean_relative(path) == path
    with pytest.raises(InvalidInputError):
        clean_relative(path + "z")


@pytest.mark.parametrize(
    "bad",
    [
        "..",
        "a/../b",  # even when it would stay inside: nobody needs it, and it hides intent
        "%2e%2e",
        "%2e%2E/x",
        "%252e%252e/x",
        "%25252e%25252e/x",
        "%2525252e%2525252e/x",  # encoded more times than any decoder should undo
        "/etc/passwd",
        "//etc/passwd",
        "%2fetc/passwd",
        "..\\x",
        "a\\b",
        "a%5cb",
        "a\x00b",
        "a%00b",
        "a\nb",
        "a\x7fb",
        "x" * (MAX_SEGMENT_BYTES + 1),
        "é" * (MAX_SEGMENT_BYTES // 2 + 1),
    ],
)
def test_refused_paths_name_the_field(bad: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        clean_relative(bad, field="artifact.path")
    assert (caught.value.code, caught.value.field, caught.value.status) == (
        "invalid_path",
        "artifact.path",
        400,
    )


def test_messages_of_over_long_paths_stay_short() -> None:
    with pytest.raises(InvalidInputError) as caught:
        clean_relative("q" * 100_000)
    assert len(caught.value.detail) < 200
