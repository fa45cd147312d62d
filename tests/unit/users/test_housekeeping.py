"""Expired revocations, sessions and login attempts are forgotten; live ones are kept."""

import pytest
import sqlalchemy as sa

from common import times
from common.db import Database
from common.errors import Unauthenticated
from tests.support.users import ADMIN_PASSWORD, users_settings
from users import sql_store
from users.server import build_components

HOUR = times.seconds(3600)
MINUTE = times.seconds(60)


@pytest.fixture
def parts(tmp_path):
    components = build_components(users_settings(tmp_path, lockout_seconds=60))
    yield components
    components.close()


def _count(parts, table):
    with parts.store.db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_only_expired_state_is_forgotten(parts):
    auth = parts.auth
    ended = auth.login("admin", ADMIN_PASSWORD)
    auth.logout(parts.verifier.verify_access(ended.access.token))
    live = auth.login("admin", ADMIN_PASSWORD)
    with pytest.raises(Unauthenticated):
        auth.login("nobody-at-all", "wrong password")
    assert (_count(parts, sql_store.revocations), _count(parts, sql_store.sessions)) == (1, 2)
    # A success deletes its own pair's row; the unknown user's failure stays until forgotten.
    assert _count(parts, sql_store.login_attempts) == 1

    now = times.now()
    kept = parts.store.forget_expired(now_ns=now, session_lifetime_ns=HOUR, failure_reset_ns=MINUTE)
    assert (kept.revocations, kept.sessions, kept.login_attempts) == (0, 0, 0)

    later = now + HOUR + times.SECOND
    gone = parts.store.forget_expired(
        now_ns=later, session_lifetime_ns=HOUR, failure_reset_ns=MINUTE
    )
    assert (gone.revocations, gone.sessions, gone.login_attempts) == (1, 2, 1)
    # The live session's token is still verified (by signature and expiry, not by the table).
    assert parts.verifier.verify_access(live.access.token).username == "admin"


def test_sequences_are_never_reused_after_every_revocation_is_forgotten(parts):
    auth = parts.auth
    first = auth.login("admin", ADMIN_PASSWORD)
    auth.logout(parts.verifier.verify_access(first.access.token))
    before = parts.revocations.head
    gone = parts.store.forget_expired(
        now_ns=times.now() + HOUR + times.SECOND, session_lifetime_ns=HOUR, failure_reset_ns=MINUTE
    )
    assert gone.revocations == 1 and _count(parts, sql_store.revocations) == 0
    second = auth.login("admin", ADMIN_PASSWORD)
    auth.logout(parts.verifier.verify_access(second.access.token))
    # A reused sequence would sit behind every follower's position, the service's own included.
    assert parts.revocations.head > before
    with pytest.raises(Unauthenticated) as revoked:
        parts.verifier.verify_access(second.access.token)
    assert revoked.value.reason == "TOKEN_REVOKED"


def test_an_older_revocation_table_is_rebuilt_to_never_reuse_sequences(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'users.db'}")
    db.migrate(sql_store.MIGRATIONS[:2])
    with db.write() as conn:
        # The table as the first release created it.
        conn.exec_driver_sql("DROP TABLE revocations")
        conn.exec_driver_sql(
            "CREATE TABLE revocations (seq INTEGER NOT NULL PRIMARY KEY, "
            "session_id VARCHAR(36) NOT NULL, token_id VARCHAR(36), reason VARCHAR(32) NOT NULL, "
            "revoked_at FLOAT NOT NULL, expires_at FLOAT NOT NULL)"
        )
        for seq in (3, 7):
            conn.exec_driver_sql(
                "INSERT INTO revocations VALUES (?, ?, NULL, 'logout', 1.0, 2.0)", (seq, f"s{seq}")
            )
    assert db.migrate(sql_store.MIGRATIONS) == len(sql_store.MIGRATIONS)
    with db.write() as conn:
        conn.execute(sql_store.revocations.delete().where(sql_store.revocations.c.seq == 7))
        conn.execute(
            sql_store.revocations.insert().values(
                session_id="new", reason="logout", revoked_ns=1, expires_ns=2
            )
        )
        kept = conn.execute(
            sa.select(sql_store.revocations.c.seq, sql_store.revocations.c.session_id).order_by(
                "seq"
            )
        ).all()
    db.dispose()
    assert [tuple(row) for row in kept] == [(3, "s3"), (8, "new")]
