"""First start: secrets written once, whole, privately, and never logged."""

import json
import logging
import os
import stat

import pytest

from common.db import Database
from common.users_client import SERVICE_ACCOUNTS_FILE
from users.bootstrap import ADMIN_PASSWORD_FILE, ensure_accounts
from users.passwords import Passwords
from users.secret_files import secret_file
from users.sql_store import SqlUserStore


@pytest.fixture
def store(tmp_path):
    users = SqlUserStore(Database(f"sqlite:///{tmp_path / 'db' / 'users.db'}"))
    users.migrate()
    yield users
    users.close()


def _log_text(records):
    return "\n".join(json.dumps(r.__dict__, default=str) for r in records)


def test_generated_secrets_are_private_reused_and_never_logged(store, tmp_path, caplog):
    data = tmp_path / "not-yet-created"
    passwords = Passwords("test")
    with caplog.at_level(logging.DEBUG):
        ensure_accounts(store, passwords, data_dir=data, admin_password=None)
    secret = (data / ADMIN_PASSWORD_FILE).read_text().strip()
    services = json.loads((data / SERVICE_ACCOUNTS_FILE).read_text())
    assert len(secret) >= 24
    for name in (ADMIN_PASSWORD_FILE, SERVICE_ACCOUNTS_FILE):
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600
    assert sorted(os.listdir(data)) == sorted([ADMIN_PASSWORD_FILE, SERVICE_ACCOUNTS_FILE])
    logged = _log_text(caplog.records)
    assert "first admin created" in logged
    assert secret not in logged
    assert not any(password in logged for password in services.values())
    with store.read() as reads:
        admin = reads.user(username="admin")
    assert admin is not None and passwords.verify(admin.password_hash, secret).ok
    assert secret_file(data / ADMIN_PASSWORD_FILE, "another") == secret


def test_a_crash_while_writing_leaves_no_empty_secret(tmp_path, monkeypatch):
    path = tmp_path / ADMIN_PASSWORD_FILE
    real_fsync = os.fsync

    def crash(fd):
        raise OSError("disk went away")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk went away"):
        secret_file(path, "first-secret")
    monkeypatch.setattr(os, "fsync", real_fsync)
    # The next start writes a whole secret instead of reading back an empty file.
    assert secret_file(path, "second-secret") == "second-secret"
    assert path.read_text() == "second-secret\n"
    assert os.listdir(tmp_path) == [ADMIN_PASSWORD_FILE]
