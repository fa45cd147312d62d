"""Forgetting what can no longer matter, so the tables stay bounded by live state.

A revocation is dropped once every token it covers has expired, a session once its last refresh
token has, and a login-attempt row once its failures are forgotten and its lock is over (these
rows exist for unknown usernames too, so without this anyone could grow the table).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from common.blocking import Blocking
from common.db import Database
from users import store

log = logging.getLogger("mesh.users.housekeeping")

INTERVAL_SECONDS = 600.0


@dataclass(frozen=True)
class Forgotten:
    revocations: int
    sessions: int
    login_attempts: int


def forget_expired(
    db: Database, *, now: float, session_lifetime: float, lockout_seconds: float
) -> Forgotten:
    with db.write() as conn:
        revocations = conn.execute(
            store.revocations.delete().where(store.revocations.c.expires_at <= now)
        ).rowcount
        sessions = conn.execute(
            store.sessions.delete().where(store.sessions.c.refreshed_at <= now - session_lifetime)
        ).rowcount
        attempts = store.login_attempts
        login_attempts = conn.execute(
            attempts.delete().where(
                attempts.c.last_failure_at <= now - lockout_seconds,
                sa.or_(attempts.c.locked_until.is_(None), attempts.c.locked_until <= now),
            )
        ).rowcount
    return Forgotten(revocations, sessions, login_attempts)


class Housekeeper:
    """Runs :func:`forget_expired` every ``INTERVAL_SECONDS`` while its server runs."""

    def __init__(
        self,
        db: Database,
        *,
        blocking: Blocking,
        session_lifetime: float,
        lockout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._blocking = blocking
        self._session_lifetime = session_lifetime
        self._lockout_seconds = lockout_seconds
        self._clock = clock

    async def run(self) -> None:
        """Forget expired state every interval, until cancelled."""
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            try:
                forgotten = await self._blocking.run(
                    forget_expired,
                    self._db,
                    now=self._clock(),
                    session_lifetime=self._session_lifetime,
                    lockout_seconds=self._lockout_seconds,
                )
                log.info("forgot expired state", extra=forgotten.__dict__)
            except Exception:
                log.exception("housekeeping failed")
