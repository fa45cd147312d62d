"""Directory guards that no built-in role reaches over RPC."""

import pytest

from common.auth import Principal
from common.errors import PermissionDenied
from tests.support.users import users_settings
from users.server import build_components


@pytest.fixture
def parts(tmp_path):
    components = build_components(users_settings(tmp_path))
    yield components
    components.close()


def _caller(*permissions):
    return Principal(
        user_id="manager",
        username="manager",
        roles=(),
        permissions=frozenset(permissions),
        session_id="s",
        token_id="t",
        expires_ns=0,
    )


def test_a_role_is_granted_only_by_someone_holding_its_permissions(parts):
    manager = _caller("users:write", "users:read", "schema:read", "object:read")
    viewer = parts.directory.create_user(
        manager,
        username="newcomer",
        password="a long enough password",
        display_name="",
        email="",
        roles=["viewer"],
    )
    with pytest.raises(PermissionDenied) as caught:
        parts.directory.set_roles(manager, viewer.user_id, ["admin"], etag="")
    assert caught.value.reason == "ROLE_NOT_GRANTABLE"
    with pytest.raises(PermissionDenied):
        parts.directory.create_user(
            manager,
            username="sneaky",
            password="a long enough password",
            display_name="",
            email="",
            roles=["editor"],
        )
