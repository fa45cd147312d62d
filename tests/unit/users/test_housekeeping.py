"""Expired revocations, sessions and login attempts are forgotten; live ones are kept."""

import time

import pytest
import sqlalchemy as sa

from common.errors import Unauthenticated
from tests.support.users import ADMIN_PASSWORD, users_settings
from users import store
from users.housekeeping import forget_expired
from users.server import build_components


@pytest.fixture
def parts(tmp_path):
    components = build_components(users_settings(tmp_path, lockout_seconds=60))
    yield components
    components.close()


def _count(parts, table):
    with parts.db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_only_expired_state_is_forgotten(parts):
    auth = parts.auth
    ended = auth.login("admin", ADMIN_PASSWORD)
    auth.logout(auth.validate(ended.access.token))
    live = auth.login("admin", ADMIN_PASSWORD)
    with pytest.raises(Unauthenticated):
        auth.login("nobody-at-all", "wrong password")
    assert (_count(parts, store.revocations), _count(parts, store.sessions)) == (1, 2)
    assert _count(parts, store.login_attempts) == 2

    now = time.time()
    kept = forget_expired(parts.db, now=now, session_lifetime=3600, lockout_seconds=60)
    assert (kept.revocations, kept.sessions, kept.login_attempts) == (0, 0, 0)

    later = now + 3601
    gone = forget_expired(parts.db, now=later, session_lifetime=3600, lockout_seconds=60)
    assert (gone.revocations, gone.sessions, gone.login_attempts) == (1, 2, 2)
    # The live session's token is still verified (by signature and expiry, not by the table).
    assert auth.validate(live.access.token).username == "admin"
