"""The Python SDK against a real server: configuration, workspaces, users, tokens, errors."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from shipyard import Client
from shipyard.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ShipyardError,
    UnauthenticatedError,
    UnavailableError,
)
from shipyard.schemas.workspaces import WorkspaceRead
from shipyard.sdk.profile import Profile, config_path, save_profile
from tests.conftest import ADMIN_TOKEN, RunningServer, free_port, unique

# ---------------------------------------------------------------------------------------------
# Helpers


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers every GET with a 404 problem, remembering the Authorization header it got."""

    server: _RecordingServer

    def do_GET(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))
        body = json.dumps({"code": "nothing_here", "detail": "a recording endpoint"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _RecordingServer(ThreadingHTTPServer):
    authorizations: list[str | None]


@dataclass
class Recorder:
    url: str
    authorizations: list[str | None] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A second, tiny real HTTP endpoint ("server B") that records the credentials it is sent."""
    httpd = _RecordingServer(("127.0.0.1", 0), _RecordingHandler)
    httpd.authorizations = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        yield Recorder(url=f"http://127.0.0.1:{port}", authorizations=httpd.authorizations)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@dataclass
class Member:
    """A non-admin user, with a client signed in as them."""

    name: str
    client: Client
    token: str


@pytest.fixture
def member(server: RunningServer, admin: Client) -> Iterator[Member]:
    name = unique("user")
    admin.users.create(name, display_name="A Member", email=f"{name}@example.com")
    token = admin.tokens.create("sdk-tests", user=name).token
    with Client(server.url, token) as client:
        yield Member(name=name, client=client, token=token)


def _names(workspaces: Iterator[WorkspaceRead]) -> list[str]:
    return [w.name for w in workspaces]


# ---------------------------------------------------------------------------------------------
# Where the URL and token come from


def test_explicit_url_and_token(server: RunningServer) -> None:
    with Client(server.url, ADMIN_TOKEN) as client:
        me = client.users.me()
    assert me.name == "admin"
    assert me.is_admin is True


def test_url_and_token_from_the_environment(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_URL", server.url)
    monkeypatch.setenv("SHIPYARD_TOKEN", ADMIN_TOKEN)
    with Client() as client:
        assert client.url == server.url
        assert client.users.me().name == "admin"


def test_explicit_arguments_win_over_the_environment(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("SHIPYARD_TOKEN", "shp_not-a-real-token")
    with Client(server.url, ADMIN_TOKEN) as client:
        assert client.users.me().name == "admin"


def test_url_and_token_from_the_saved_profile(server: RunningServer) -> None:
    save_profile(Profile(url=server.url, token=ADMIN_TOKEN))
    with Client() as client:
        assert client.url == server.url
        assert client.users.me().name == "admin"


def test_a_named_profile_is_used_when_asked_for(server: RunningServer, recorder: Recorder) -> None:
    save_profile(Profile(url=server.url, token=ADMIN_TOKEN), "work")
    save_profile(Profile(url=recorder.url, token="shp_other"), "elsewhere")  # now current
    with Client(profile="work") as client:
        assert client.url == server.url
        assert client.users.me().name == "admin"
    with Client() as client:
        assert client.url == recorder.url


def test_the_environment_wins_over_the_saved_profile(
    server: RunningServer, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_profile(Profile(url=recorder.url, token="shp_saved-for-the-recorder"))
    monkeypatch.setenv("SHIPYARD_URL", server.url)
    monkeypatch.setenv("SHIPYARD_TOKEN", ADMIN_TOKEN)
    with Client() as client:
        assert client.url == server.url
        assert client.users.me().name == "admin"
    assert recorder.authorizations == []


def test_the_saved_token_goes_to_the_saved_server_only(
    server: RunningServer, recorder: Recorder
) -> None:
    save_profile(Profile(url=server.url, token=ADMIN_TOKEN))
    # The saved server gets the saved token (a trailing slash is the same server)...
    with Client(server.url + "/") as client:
        assert client.users.me().name == "admin"
    # ...another server, named explicitly, does not.
    with Client(recorder.url) as client, pytest.raises(NotFoundError) as caught:
        client.users.me()
    assert caught.value.code == "nothing_here"
    assert recorder.authorizations == [None]


def test_the_saved_token_is_not_sent_to_a_url_from_the_environment(
    server: RunningServer, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_profile(Profile(url=server.url, token=ADMIN_TOKEN))
    monkeypatch.setenv("SHIPYARD_URL", recorder.url)
    with Client() as client, pytest.raises(NotFoundError):
        client.users.me()
    assert recorder.authorizations == [None]


def test_the_saved_token_is_sent_to_the_saved_server_only(recorder: Recorder) -> None:
    """Positive control for the tests above: the recorder does see a token when it is due."""
    save_profile(Profile(url=recorder.url, token="shp_saved-for-the-recorder"))
    with Client() as client, pytest.raises(NotFoundError):
        client.users.me()
    assert recorder.authorizations == ["Bearer shp_saved-for-the-recorder"]


def test_another_spelling_of_the_saved_url_gets_no_token(server: RunningServer) -> None:
    save_profile(Profile(url=server.url, token=ADMIN_TOKEN))
    other_spelling = server.url.replace("127.0.0.1", "localhost")
    assert other_spelling != server.url
    with Client(other_spelling) as client, pytest.raises(UnauthenticatedError) as caught:
        client.users.me()
    assert caught.value.code == "missing_token"
    assert caught.value.status == 401


def test_the_profile_file_is_private(server: RunningServer) -> None:
    path = save_profile(Profile(url=server.url, token=ADMIN_TOKEN))
    assert path == config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_explicit_arguments_do_not_read_a_damaged_config_file(server: RunningServer) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("profiles: [not, closed\n", encoding="utf-8")
    with Client(server.url, ADMIN_TOKEN) as client:
        assert client.users.me().name == "admin"


def test_a_damaged_config_file_is_a_clear_error() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("current: default\nprofiles: [not, closed\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        Client()
    assert caught.value.code == "invalid_config"
    assert f"{path}:3:" in caught.value.detail
    with pytest.raises(InvalidInputError, match="invalid_config"):
        save_profile(Profile(url="http://127.0.0.1:1", token=None))


def test_profiles_that_are_not_a_mapping_are_ignored_and_replaced(server: RunningServer) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("profiles: [a, b]\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        Client()
    assert caught.value.code == "no_server_url"
    save_profile(Profile(url=server.url, token=ADMIN_TOKEN))
    with Client() as client:
        assert client.users.me().name == "admin"


def test_no_url_anywhere_is_an_error() -> None:
    with pytest.raises(InvalidInputError) as caught:
        Client()
    assert caught.value.code == "no_server_url"
    assert caught.value.field == "url"


@pytest.mark.parametrize("url", ["127.0.0.1:8765", "ftp://host/x", "localhost"])
def test_a_url_without_http_is_an_error_at_once(url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Client(url, "shp_x")
    assert (caught.value.code, caught.value.field) == ("invalid_url", "url")


def test_the_repr_shows_the_url_but_never_the_token(server: RunningServer) -> None:
    with Client(server.url, ADMIN_TOKEN) as client:
        text = repr(client)
    assert server.url in text
    assert ADMIN_TOKEN not in text


def test_the_client_is_a_context_manager_that_closes(server: RunningServer) -> None:
    client = Client(server.url, ADMIN_TOKEN)
    with client as entered:
        assert entered is client
        assert entered.users.me().name == "admin"
    with pytest.raises(RuntimeError, match="closed"):
        client.users.me()


# ---------------------------------------------------------------------------------------------
# Workspaces


def test_create_returns_a_typed_workspace(admin: Client, server: RunningServer) -> None:
    name = unique()
    created = admin.workspaces.create(
        name=name,
        display_name="Churn models",
        description="Predicting churn",
        tags={"team": "growth", "tier": "gold"},
    )
    assert isinstance(created, WorkspaceRead)
    assert created.name == name
    assert created.display_name == "Churn models"
    assert created.description == "Predicting churn"
    assert created.tags == {"team": "growth", "tier": "gold"}
    assert created.created_by == "admin"
    assert created.deleted_at is None
    assert created.id in created.storage.prefix
    assert created.storage.managed is True
    assert created.key_vault.id
    assert created.environment_registry.shared is True
    assert created.mlflow_tracking_uri == f"{server.url}/mlflow/workspaces/{name}"
    assert name in repr(created)


def test_create_with_a_dedicated_environment_registry(admin: Client) -> None:
    created = admin.workspaces.create(name=unique(), environment_registry="dedicated")
    assert created.environment_registry.shared is False
    assert created.tags == {}
    assert created.display_name is None


def test_get_returns_what_create_returned(admin: Client) -> None:
    created = admin.workspaces.create(name=unique(), description="d", tags={"a": "1"})
    assert admin.workspaces.get(created.name) == created


def test_update_changes_only_the_given_field(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name, display_name="Shown", description="old", tags={"k": "v"})
    updated = admin.workspaces.update(name, description="new")
    assert updated.description == "new"
    assert updated.display_name == "Shown"
    assert updated.tags == {"k": "v"}
    assert admin.workspaces.get(name).description == "new"


def test_update_with_none_clears_a_field(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name, display_name="Shown", description="kept")
    updated = admin.workspaces.update(name, display_name=None)
    assert updated.display_name is None
    assert updated.description == "kept"
    assert admin.workspaces.get(name).display_name is None


def test_update_tags_replaces_them_all(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name, tags={"a": "1", "b": "2"})
    assert admin.workspaces.update(name, tags={"c": "3"}).tags == {"c": "3"}
    assert admin.workspaces.update(name, tags=None).tags == {}


def test_list_iterates_every_page(admin: Client) -> None:
    prefix = unique("paged")
    names = [f"{prefix}-{i}" for i in (3, 0, 4, 1, 2)]
    for name in names:
        admin.workspaces.create(name=name)
    listed = _names(admin.workspaces.list(page_size=2))
    assert len(listed) == len(set(listed)), "a workspace was yielded twice"
    assert listed == sorted(listed)
    assert [n for n in listed if n.startswith(prefix)] == sorted(names)


def test_list_is_lazy_and_pages_on_demand(admin: Client) -> None:
    prefix = unique("lazy")
    for i in range(3):
        admin.workspaces.create(name=f"{prefix}-{i}")
    iterator = admin.workspaces.list(page_size=1)
    first = next(iterator)
    second = next(iterator)
    assert first.name < second.name


def test_delete_recover_and_delete_permanently(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name)

    assert admin.workspaces.delete(name) is None
    with pytest.raises(NotFoundError) as caught:
        admin.workspaces.get(name)
    assert caught.value.code == "workspace_deleted"
    assert name not in _names(admin.workspaces.list())
    deleted = {w.name: w for w in admin.workspaces.list(deleted=True)}
    assert deleted[name].deleted_at is not None

    recovered = admin.workspaces.recover(name)
    assert recovered.deleted_at is None
    assert admin.workspaces.get(name).name == name
    assert name in _names(admin.workspaces.list())
    assert name not in _names(admin.workspaces.list(deleted=True))

    admin.workspaces.delete(name, permanently_delete=True)
    with pytest.raises(NotFoundError) as caught:
        admin.workspaces.get(name)
    assert caught.value.code == "workspace_not_found"
    assert name not in _names(admin.workspaces.list(deleted=True))
    # The name is free again.
    assert admin.workspaces.create(name=name).name == name


def test_a_soft_deleted_workspace_can_be_deleted_permanently(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name)
    admin.workspaces.delete(name)
    admin.workspaces.delete(name, permanently_delete=True)
    with pytest.raises(NotFoundError) as caught:
        admin.workspaces.recover(name)
    assert caught.value.code == "workspace_not_found"


def test_recovering_a_live_workspace_is_a_conflict(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name)
    with pytest.raises(ConflictError) as caught:
        admin.workspaces.recover(name)
    assert caught.value.code == "workspace_not_deleted"


def test_creating_over_a_soft_deleted_name_is_a_conflict(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name)
    admin.workspaces.delete(name)
    with pytest.raises(ConflictError) as caught:
        admin.workspaces.create(name=name)
    assert caught.value.code == "workspace_deleted"


def test_workspace_handle(admin: Client) -> None:
    created = admin.workspaces.create(name=unique())
    handle = admin.workspace(created.name)
    assert handle.name == created.name
    assert created.name in repr(handle)
    assert handle.get() == created


def test_a_handle_to_a_missing_workspace_fails_on_use(admin: Client) -> None:
    handle = admin.workspace(unique("missing"))
    with pytest.raises(NotFoundError) as caught:
        handle.get()
    assert caught.value.code == "workspace_not_found"


# ---------------------------------------------------------------------------------------------
# Typed errors


def test_duplicate_create_is_a_conflict(admin: Client) -> None:
    name = unique()
    admin.workspaces.create(name=name)
    with pytest.raises(ConflictError) as caught:
        admin.workspaces.create(name=name)
    error = caught.value
    assert isinstance(error, ShipyardError)
    assert error.code == "workspace_exists"
    assert error.field == "name"
    assert error.status == 409
    assert isinstance(error.request_id, str)
    assert error.request_id
    assert name in error.detail


def test_an_invalid_name_is_invalid_input(admin: Client) -> None:
    with pytest.raises(InvalidInputError) as caught:
        admin.workspaces.create(name="Not A Valid_Name!")
    assert caught.value.code == "invalid_field"
    assert caught.value.field == "name"
    assert caught.value.status == 400


def test_an_unknown_field_in_a_spec_is_named(admin: Client) -> None:
    with pytest.raises(InvalidInputError) as caught:
        admin.workspaces.create_from_spec({"name": unique(), "descripton": "typo"})
    assert caught.value.code == "unknown_field"
    assert caught.value.field == "descripton"


def test_an_unknown_workspace_is_not_found(admin: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        admin.workspaces.get(unique("nope"))
    assert caught.value.code == "workspace_not_found"
    assert caught.value.status == 404


def test_a_bad_token_is_unauthenticated(server: RunningServer) -> None:
    with (
        Client(server.url, "shp_not-a-real-token") as client,
        pytest.raises(UnauthenticatedError) as caught,
    ):
        client.workspaces.get(unique())
    assert caught.value.code == "invalid_token"
    assert caught.value.status == 401


def test_an_unreachable_server_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, ADMIN_TOKEN) as client, pytest.raises(UnavailableError) as caught:
        client.workspaces.get("anything")
    assert caught.value.code == "unreachable"
    assert url in caught.value.detail
    assert ADMIN_TOKEN not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Users


def test_users_create_get_list(admin: Client) -> None:
    name = unique("user")
    created = admin.users.create(name, display_name="Ada", email="ada@example.com")
    assert created.name == name
    assert created.display_name == "Ada"
    assert created.email == "ada@example.com"
    assert created.is_admin is False
    assert created.disabled is False
    assert admin.users.get(name) == created
    listed = {u.name: u for u in admin.users.list()}
    assert listed[name] == created
    assert listed["admin"].is_admin is True


def test_a_duplicate_user_is_a_conflict(admin: Client) -> None:
    name = unique("user")
    admin.users.create(name)
    with pytest.raises(ConflictError) as caught:
        admin.users.create(name)
    assert caught.value.code == "user_exists"
    assert caught.value.field == "name"


def test_an_unknown_user_is_not_found(admin: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        admin.users.get(unique("ghost"))
    assert caught.value.code == "user_not_found"


def test_me_is_the_caller(member: Member) -> None:
    me = member.client.users.me()
    assert me.name == member.name
    assert me.is_admin is False


def test_disable_and_enable_a_user(server: RunningServer, admin: Client, member: Member) -> None:
    assert admin.users.disable(member.name).disabled is True
    assert admin.users.get(member.name).disabled is True
    with pytest.raises(UnauthenticatedError) as caught:
        member.client.users.me()
    assert caught.value.code == "disabled_user"

    assert admin.users.enable(member.name).disabled is False
    assert member.client.users.me().name == member.name


# ---------------------------------------------------------------------------------------------
# Tokens


def test_create_list_and_revoke_a_token(server: RunningServer, member: Member) -> None:
    created = member.client.tokens.create("laptop", expires_in_days=7)
    assert created.token.startswith("shp_")
    assert created.user == member.name
    assert created.revoked_at is None
    assert created.token.startswith(created.prefix)
    assert len(created.prefix) < len(created.token)

    listed = {t.id: t for t in member.client.tokens.list()}
    item = listed[created.id]
    assert item.name == "laptop"
    assert item.prefix == created.prefix
    assert not hasattr(item, "token")
    assert created.token not in repr(item)
    # Not only dropped by the SDK: the server never sends it in a list.
    raw = httpx.get(
        server.url + "/api/v1/tokens", headers={"Authorization": f"Bearer {member.token}"}
    )
    assert raw.status_code == 200
    assert created.token not in raw.text
    assert all("token" not in entry for entry in raw.json()["items"])

    with Client(server.url, created.token) as with_new_token:
        assert with_new_token.users.me().name == member.name
        revoked = member.client.tokens.revoke(created.id)
        assert revoked.id == created.id
        assert revoked.revoked_at is not None
        with pytest.raises(UnauthenticatedError) as caught:
            with_new_token.users.me()
    assert caught.value.code == "revoked_token"
    assert member.client.users.me().name == member.name  # the member's other token still works


def test_an_admin_may_create_and_list_tokens_for_a_user(admin: Client, member: Member) -> None:
    created = admin.tokens.create("for-them", user=member.name)
    assert created.user == member.name
    listed = [t.id for t in admin.tokens.list(user=member.name)]
    assert created.id in listed
    assert created.id not in [t.id for t in admin.tokens.list()]


def test_a_user_cannot_manage_another_users_tokens(admin: Client, member: Member) -> None:
    admins_token = admin.tokens.create("admins-own")
    with pytest.raises(ForbiddenError):
        list(member.client.tokens.list(user="admin"))
    with pytest.raises(ForbiddenError):
        member.client.tokens.create("sneaky", user="admin")
    with pytest.raises(NotFoundError) as caught:
        member.client.tokens.revoke(admins_token.id)
    assert caught.value.code == "token_not_found"
    assert admin.tokens.revoke(admins_token.id).revoked_at is not None


# ---------------------------------------------------------------------------------------------
# What a non-admin may do


def test_a_user_cannot_manage_users(member: Member) -> None:
    with pytest.raises(ForbiddenError) as caught:
        list(member.client.users.list())
    assert caught.value.code == "forbidden"
    assert caught.value.status == 403
    with pytest.raises(ForbiddenError):
        member.client.users.get("admin")
    with pytest.raises(ForbiddenError):
        member.client.users.create(unique("user"))
    with pytest.raises(ForbiddenError):
        member.client.users.disable("admin")


def test_a_user_cannot_see_someone_elses_workspace(admin: Client, member: Member) -> None:
    name = unique()
    admin.workspaces.create(name=name)
    # Hidden, not forbidden: the member cannot learn that the workspace exists.
    with pytest.raises(NotFoundError) as caught:
        member.client.workspaces.get(name)
    assert caught.value.code == "workspace_not_found"
    with pytest.raises(NotFoundError):
        member.client.workspace(name).get()
    with pytest.raises(NotFoundError):
        member.client.workspaces.update(name, description="mine now")
    with pytest.raises(NotFoundError):
        member.client.workspaces.delete(name)
    assert name not in _names(member.client.workspaces.list())
    assert name in _names(admin.workspaces.list())
    assert admin.workspaces.get(name).description is None


def test_a_user_manages_their_own_workspaces(admin: Client, member: Member) -> None:
    name = unique()
    created = member.client.workspaces.create(name=name, tags={"owner": member.name})
    assert created.created_by == member.name
    assert _names(member.client.workspaces.list()) == [name]
    assert member.client.workspaces.update(name, description="mine").description == "mine"
    member.client.workspaces.delete(name)
    assert _names(member.client.workspaces.list(deleted=True)) == [name]
    assert member.client.workspaces.recover(name).deleted_at is None
    # The admin sees it too.
    assert admin.workspaces.get(name).created_by == member.name
    member.client.workspaces.delete(name, permanently_delete=True)
    assert _names(member.client.workspaces.list(deleted=True)) == []
