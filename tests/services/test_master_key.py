"""The master key: where it comes from, what it refuses, how ciphertexts are bound, and how a
rotation keeps every secret readable whenever it stops."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from shipyard.domain.errors import ShipyardError, UnavailableError
from shipyard.schemas.workspaces import WorkspaceCreate
from shipyard.services import master_key
from shipyard.services.bootstrap import prepare
from shipyard.services.master_key import (
    DecryptionError,
    Keyring,
    MasterKey,
    MasterKeyError,
    load_keyring,
    read_key_file,
)
from shipyard.services.secrets import (
    SecretService,
    associated_data,
    rotate_key_files,
    rotate_master_key,
)
from shipyard.services.workspaces import StoragePolicy, WorkspaceService
from shipyard.settings import Settings
from shipyard.store import secrets as secret_store
from shipyard.store import users as user_store
from shipyard.store.database import Database
from shipyard.store.secrets import SecretRow

# ----------------------------------------------------------------------------------------
# Where the key comes from
# ----------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_key_file_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_keyring(None, data_dir)
    key_file = data_dir / "master.key"
    assert mode(key_file) == 0o600
    assert mode(data_dir) == 0o700
    assert first.primary == read_key_file(key_file)
    second = load_keyring(None, data_dir)
    assert second.primary == first.primary
    assert [p.name for p in data_dir.iterdir()] == ["master.key"]  # no temporary file left


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_stops_the_server(tmp_path: Path, loose: int) -> None:
    load_keyring(None, tmp_path)
    key_file = tmp_path / "master.key"
    key_file.chmod(loose)
    with pytest.raises(MasterKeyError, match=r"chmod 600") as refused:
        load_keyring(None, tmp_path)
    assert f"{loose:o}" in str(refused.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a key\n", b"c2hvcnQ=\n", MasterKey.generate().encode().encode()[:-8], b"\xff\xfe"],
    ids=["empty", "text", "too-short", "truncated", "binary"],
)
def test_a_malformed_key_file_stops_the_server_without_quoting_it(
    tmp_path: Path, content: bytes
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    with pytest.raises(MasterKeyError, match="does not hold a master key") as refused:
        load_keyring(None, tmp_path)
    if content.strip():
        assert content.decode("latin-1").strip() not in str(refused.value)
    assert key_file.read_bytes() == content  # never replaced by a fresh key


def test_the_setting_is_used_and_no_file_is_written(tmp_path: Path) -> None:
    key = MasterKey.generate()
    keyring = load_keyring(SecretStr(key.encode()), tmp_path / "data")
    assert keyring.primary == key
    assert not (tmp_path / "data" / "master.key").exists()
    # URL-safe base64 without padding, as some secret managers print it, is the same key.
    urlsafe = key.encode().replace("+", "-").replace("/", "_").rstrip("=")
    assert load_keyring(SecretStr(urlsafe), tmp_path).primary == key
    with pytest.raises(MasterKeyError, match="master_key setting") as refused:
        load_keyring(SecretStr("short-and-wrong"), tmp_path)
    assert "short-and-wrong" not in str(refused.value)


def test_a_key_never_shows_in_its_repr() -> None:
    key = MasterKey.generate()
    assert key.encode() not in repr(key)
    assert key.secret.hex() not in repr(key)
    assert repr(key.secret) not in repr(key)


# ----------------------------------------------------------------------------------------
# Ciphertexts
# ----------------------------------------------------------------------------------------


def test_a_ciphertext_opens_only_with_its_key_and_its_name() -> None:
    key, other = MasterKey.generate(), MasterKey.generate()
    bound = associated_data("vault-1", "db-password")
    sealed = key.encrypt(b"hunter2", bound)
    assert b"hunter2" not in sealed
    assert key.encrypt(b"hunter2", bound) != sealed  # a fresh nonce each time
    assert key.decrypt(sealed, bound) == b"hunter2"
    for wrong_key, wrong_data in (
        (other, bound),
        (key, associated_data("vault-1", "db-password2")),
        (key, associated_data("vault-2", "db-password")),
    ):
        with pytest.raises(DecryptionError):
            wrong_key.decrypt(sealed, wrong_data)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for broken in (tampered, sealed[:20], b"", b"\x02" + sealed[1:]):
        with pytest.raises(DecryptionError):
            key.decrypt(broken, bound)
    assert key.key_id != other.key_id
    assert key.key_id == MasterKey(key.secret).key_id


# ----------------------------------------------------------------------------------------
# Secrets in a real database
# ----------------------------------------------------------------------------------------


@dataclass
class Vaults:
    db: Database
    data_dir: Path
    admin_id: str
    workspaces: WorkspaceService

    def service(self, keyring: Keyring | None = None) -> SecretService:
        return SecretService(self.db, keyring or load_keyring(None, self.data_dir))

    def workspace(self, name: str) -> str:
        self.workspaces.create(self.admin_id, WorkspaceCreate(name=name))
        return name

    def rows(self) -> list[SecretRow]:
        with self.db.read() as session:
            return list(session.scalars(select(SecretRow).order_by(SecretRow.name)))


@pytest.fixture
def vaults(tmp_path: Path, database_url: str) -> Iterator[Vaults]:
    data_dir = tmp_path / "data"
    db = Database(database_url)
    try:
        prepare(Settings(data_dir=data_dir, db_url=database_url), db)
        with db.read() as session:
            admin = user_store.find_admin(session)
            assert admin is not None
        policy = StoragePolicy(str(tmp_path / "artifacts"))
        yield Vaults(db, data_dir, admin.id, WorkspaceService(db, policy, retention_days=14))
    finally:
        db.dispose()


def fill(vaults: Vaults, service: SecretService) -> dict[tuple[str, str], str]:
    """Secrets in two workspaces; returns (workspace, name) -> value."""
    values = {}
    for workspace in (vaults.workspace("alpha"), vaults.workspace("beta")):
        for index in range(3):
            name, value = f"secret-{index}", f"{workspace} value {index} ✓"
            service.set(workspace, name, value, vaults.admin_id)
            values[(workspace, name)] = value
    return values


def test_a_ciphertext_moved_to_another_secret_does_not_decrypt(vaults: Vaults) -> None:
    service = vaults.service()
    values = fill(vaults, service)
    with vaults.db.write() as session:
        rows = list(session.scalars(select(SecretRow)))
        alpha_vault = next(r.vault_id for r in rows if r.name == "secret-0")
        by_place = {(r.vault_id == alpha_vault, r.name): r for r in rows}
        source = by_place[(True, "secret-0")]
        by_place[(True, "secret-1")].ciphertext = source.ciphertext  # another name
        by_place[(False, "secret-0")].ciphertext = source.ciphertext  # another vault
    moved = {("alpha", "secret-1"), ("beta", "secret-0")}
    for (workspace, name), value in values.items():
        if (workspace, name) not in moved:
            assert service.reveal(workspace, name).value == value
            continue
        with pytest.raises(ShipyardError) as refused:
            service.reveal(workspace, name)
        assert (refused.value.code, refused.value.status) == ("secret_unreadable", 500)
        assert values[("alpha", "secret-0")] not in str(refused.value)


def test_rotation_keeps_every_value_readable_and_the_old_key_no_longer_decrypts(
    vaults: Vaults,
) -> None:
    service = vaults.service()
    values = fill(vaults, service)
    old = read_key_file(vaults.data_dir / "master.key")

    done = rotate_key_files(vaults.db, None, vaults.data_dir, None)

    new = read_key_file(vaults.data_dir / "master.key")
    assert new != old
    assert (done.secrets, done.new_key_id, done.old_key_ids) == (6, new.key_id, (old.key_id,))
    assert mode(vaults.data_dir / "master.key") == 0o600
    assert not (vaults.data_dir / "master.key.new").exists()
    rotated = vaults.service()  # a server started after the rotation
    for (workspace, name), value in values.items():
        assert rotated.reveal(workspace, name).value == value
    for row in vaults.rows():
        assert row.key_id == new.key_id
        with pytest.raises(DecryptionError):
            old.decrypt(row.ciphertext, associated_data(row.vault_id, row.name))
    with pytest.raises(UnavailableError) as refused:  # a server that only has the old key
        SecretService(vaults.db, Keyring([old])).reveal("alpha", "secret-0")
    assert refused.value.code == "master_key_unavailable"
    # The new key really is a new key for the rows: one more rotation moves them again.
    again = rotate_key_files(vaults.db, None, vaults.data_dir, None)
    assert again.secrets == 6
    assert again.old_key_ids == (new.key_id,)


def test_a_running_server_follows_a_rotation(vaults: Vaults) -> None:
    running = vaults.service()
    values = fill(vaults, running)
    done = rotate_key_files(vaults.db, None, vaults.data_dir, None)
    assert running.reveal("alpha", "secret-1").value == values[("alpha", "secret-1")]
    # It writes with the key the database names, not the one it started with.
    running.set("alpha", "after-rotation", "fresh", vaults.admin_id)
    row = next(r for r in vaults.rows() if r.name == "after-rotation")
    assert row.key_id == done.new_key_id
    assert vaults.service().reveal("alpha", "after-rotation").value == "fresh"


def test_a_rotation_that_stopped_after_its_commit_is_finished(vaults: Vaults) -> None:
    values = fill(vaults, vaults.service())
    old = Keyring(master_key.load_keys(None, vaults.data_dir, create=False))
    new = MasterKey.generate()
    master_key.stage_key(vaults.data_dir, new)
    rotate_master_key(vaults.db, old, new)  # ...and the process dies before the rename

    restarted = vaults.service()  # reads master.key and master.key.new
    for (workspace, name), value in values.items():
        assert restarted.reveal(workspace, name).value == value

    done = rotate_key_files(vaults.db, None, vaults.data_dir, None)
    assert done.finished_interrupted
    assert read_key_file(vaults.data_dir / "master.key") == new
    assert not (vaults.data_dir / "master.key.new").exists()
    for (workspace, name), value in values.items():
        assert vaults.service().reveal(workspace, name).value == value


def test_a_rotation_that_stopped_before_its_commit_is_dropped(vaults: Vaults) -> None:
    values = fill(vaults, vaults.service())
    abandoned = MasterKey.generate()
    master_key.stage_key(vaults.data_dir, abandoned)  # ...and the process dies here

    done = rotate_key_files(vaults.db, None, vaults.data_dir, None)
    assert not done.finished_interrupted
    assert done.new_key_id != abandoned.key_id
    assert done.secrets == 6
    assert not (vaults.data_dir / "master.key.new").exists()
    for (workspace, name), value in values.items():
        assert vaults.service().reveal(workspace, name).value == value


def test_a_rotation_that_cannot_decrypt_everything_changes_nothing(vaults: Vaults) -> None:
    service = vaults.service()
    values = fill(vaults, service)
    with vaults.db.read() as session:
        state_before = secret_store.current_key_id(session)
    key_file_before = (vaults.data_dir / "master.key").read_bytes()
    with vaults.db.write() as session:  # a secret from a key nobody has any more
        row = next(r for r in session.scalars(select(SecretRow)) if r.name == "secret-2")
        row.key_id = "0123456789abcdef"

    with pytest.raises(MasterKeyError, match="nothing was changed"):
        rotate_key_files(vaults.db, None, vaults.data_dir, None)

    assert (vaults.data_dir / "master.key").read_bytes() == key_file_before
    assert not (vaults.data_dir / "master.key.new").exists()
    with vaults.db.read() as session:
        assert secret_store.current_key_id(session) == state_before
    for (workspace, name), value in values.items():
        if name != "secret-2":
            assert service.reveal(workspace, name).value == value


def test_rotating_a_key_that_came_from_the_setting(vaults: Vaults) -> None:
    setting = SecretStr(MasterKey.generate().encode())
    service = SecretService(vaults.db, load_keyring(setting, vaults.data_dir / "env"))
    values = fill(vaults, service)
    env_dir = vaults.data_dir / "env"
    assert not (env_dir / "master.key").exists()

    done = rotate_key_files(vaults.db, setting, env_dir, None)

    new = read_key_file(env_dir / "master.key")  # the new key is on disk, mode 0600
    assert new.key_id == done.new_key_id
    assert mode(env_dir / "master.key") == 0o600
    # Until the setting is changed, a server with the old setting still finds the new key.
    restarted = SecretService(vaults.db, load_keyring(setting, env_dir))
    for (workspace, name), value in values.items():
        assert restarted.reveal(workspace, name).value == value
    restarted.set("alpha", "later", "v", vaults.admin_id)
    assert next(r for r in vaults.rows() if r.name == "later").key_id == new.key_id
    # With the setting changed to the new key and the file removed, all is still readable.
    os.unlink(env_dir / "master.key")
    switched = SecretService(vaults.db, load_keyring(SecretStr(new.encode()), env_dir))
    assert switched.reveal("beta", "secret-2").value == values[("beta", "secret-2")]


def test_a_server_with_another_key_neither_writes_nor_reads(vaults: Vaults) -> None:
    first = vaults.service()
    fill(vaults, first)
    stranger = SecretService(vaults.db, Keyring([MasterKey.generate()]))
    for attempt in (
        lambda: stranger.set("alpha", "from-stranger", "v", vaults.admin_id),
        lambda: stranger.reveal("alpha", "secret-0"),
    ):
        with pytest.raises(UnavailableError) as refused:
            attempt()
        assert refused.value.code == "master_key_unavailable"
    assert "from-stranger" not in {r.name for r in vaults.rows()}
