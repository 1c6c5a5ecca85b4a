"""A manifest's digest: the same content has the same name, whatever the order."""

from __future__ import annotations

import hashlib

from shipyard.domain.content import ManifestEntry, is_digest, manifest_digest


def test_the_digest_ignores_order_and_sees_every_field() -> None:
    a = ManifestEntry("a.csv", "1" * 64, 10)
    b = ManifestEntry("sub/b.txt", "2" * 64, 3)
    digest = manifest_digest([a, b])
    assert digest == manifest_digest([b, a])
    assert is_digest(digest)
    expected = hashlib.sha256(f"a.csv\n{'1' * 64}\n10\nsub/b.txt\n{'2' * 64}\n3\n".encode())
    assert digest == expected.hexdigest()
    assert manifest_digest([a, ManifestEntry("sub/b.txt", "2" * 64, 4)]) != digest
    assert manifest_digest([a, ManifestEntry("sub/c.txt", "2" * 64, 3)]) != digest
    assert manifest_digest([a]) != digest
    assert not is_digest("A" * 64)
    assert not is_digest("a" * 63)
