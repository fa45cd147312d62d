"""First start: the first admin and the built-in service accounts, with their secrets on disk.

A generated secret is written (mode 0600) before the account is created, and an existing file is
reused, so a crash between the two never leaves an account whose password nobody knows. Secrets
never reach the logs.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from common import times
from common.users_client import SERVICE_ACCOUNTS_FILE
from users.directory import add_user
from users.passwords import Passwords
from users.secret_files import secret_file
from users.store import UserStore

log = logging.getLogger("mesh.users.bootstrap")

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a secret
SERVICE_ACCOUNTS = ("svc-oms", "svc-audit")
"""Accounts with the ``service`` role for the OMS and the Audit Service."""


def ensure_accounts(
    store: UserStore, passwords: Passwords, *, data_dir: Path, admin_password: str | None
) -> None:
    """Create the first admin and the service accounts unless they exist."""
    with store.read() as reads:
        have_admin = reads.user(username=ADMIN_USERNAME) is not None
        missing_services = [name for name in SERVICE_ACCOUNTS if reads.user(username=name) is None]
    created: dict[str, tuple[str, tuple[str, ...]]] = {}
    if not have_admin:
        password = admin_password or secret_file(
            data_dir / ADMIN_PASSWORD_FILE, secrets.token_urlsafe(24)
        )
        created[ADMIN_USERNAME] = (passwords.hash(password), ("admin",))
        log.info(
            "first admin created",
            extra={
                "username": ADMIN_USERNAME,
                "password_source": "MESH_ADMIN_PASSWORD"
                if admin_password
                else str(data_dir / ADMIN_PASSWORD_FILE),
            },
        )
    if missing_services:
        generated = {name: secrets.token_urlsafe(24) for name in SERVICE_ACCOUNTS}
        known = json.loads(
            secret_file(data_dir / SERVICE_ACCOUNTS_FILE, json.dumps(generated, indent=2))
        )
        for name in missing_services:
            created[name] = (passwords.hash(known[name]), ("service",))
    if not created:
        return
    with store.write() as tx:
        for username, (password_hash, roles) in created.items():
            if tx.user(username=username) is not None:
                continue  # another replica created it meanwhile
            add_user(
                tx,
                username=username,
                password_hash=password_hash,
                display_name=username,
                email="",
                roles=roles,
                actor="system",
                now_ns=times.now(),
            )
