"""Sessions and login attempts at the domain level, whatever the order of concurrent calls."""

import pytest
import sqlalchemy as sa

from common import times
from common.auth import Principal
from common.errors import Unauthenticated
from tests.support.users import ADMIN_PASSWORD, users_settings
from users import sql_store
from users.passwords import Passwords
from users.server import build_components


@pytest.fixture
def parts(tmp_path):
    components = build_components(users_settings(tmp_path))
    yield components
    components.close()


def _revocations(parts):
    with parts.store.db.read() as conn:
        return conn.execute(
            sa.select(sql_store.revocations.c.session_id, sql_store.revocations.c.reason)
        ).all()


def test_a_session_logged_out_twice_is_revoked_once(parts):
    # Two logouts with the same token that both passed authentication before either committed.
    caller = parts.verifier.verify_access(parts.auth.login("admin", ADMIN_PASSWORD).access.token)
    parts.auth.logout(caller)
    parts.auth.logout(caller)
    assert _revocations(parts) == [(caller.session_id, "logout")]


def test_a_token_without_a_stored_session_is_revoked_by_its_id(parts):
    caller = Principal(
        user_id="svc-users",
        username="svc-users",
        roles=("service",),
        permissions=frozenset(),
        session_id="not-a-stored-session",
        token_id="t",
        expires_ns=0,
    )
    parts.auth.logout(caller)
    assert _revocations(parts) == [("not-a-stored-session", "logout")]
    assert parts.revocations.is_revoked(session_id="not-a-stored-session", token_id="other")


def test_a_reservation_forgotten_during_the_password_check_still_answers_cleanly(
    parts, monkeypatch
):
    real_verify = Passwords.verify

    def verify_slowly(self, stored_hash, password):
        # Housekeeping runs while this slow check is in progress, past the lockout period.
        parts.store.forget_expired(
            now_ns=times.now() + times.seconds(61),
            session_lifetime_ns=times.seconds(3600),
            failure_reset_ns=times.seconds(60),
        )
        return real_verify(self, stored_hash, password)

    monkeypatch.setattr(Passwords, "verify", verify_slowly)
    with pytest.raises(Unauthenticated) as caught:
        parts.auth.login("admin", "not the password")
    assert caught.value.reason == "INVALID_CREDENTIALS"
