"""A real User Service on a real port, one per test module, on its own data folder."""

import pytest

from tests.support.users import running_users, users_settings


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    with running_users(users_settings(tmp_path_factory.mktemp("users"))) as running:
        yield running


@pytest.fixture(scope="module")
def admin(users):
    return users.login()
