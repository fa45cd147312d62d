"""Forgetting what can no longer matter, so the tables stay bounded by live state.

A revocation is dropped once every token it covers has expired, a session once its last refresh
token has, and a login-attempt row once its failures are forgotten and its lock is over (these
rows exist for unknown usernames too, so without this anyone could grow the table).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from common import times
from common.blocking import Blocking
from users.store import UserStore

log = logging.getLogger("mesh.users.housekeeping")

INTERVAL_SECONDS = 600.0


class Housekeeper:
    """Asks the store to forget expired state every ``INTERVAL_SECONDS`` while its server runs."""

    def __init__(
        self,
        store: UserStore,
        *,
        blocking: Blocking,
        session_lifetime_ns: int,
        failure_reset_seconds: float,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._store = store
        self._blocking = blocking
        self._session_lifetime_ns = session_lifetime_ns
        self._failure_reset_ns = times.seconds(failure_reset_seconds)
        self._clock = clock

    def forget_expired(self) -> None:
        """One pass, now."""
        forgotten = self._store.forget_expired(
            now_ns=self._clock(),
            session_lifetime_ns=self._session_lifetime_ns,
            failure_reset_ns=self._failure_reset_ns,
        )
        log.info("forgot expired state", extra=forgotten.__dict__)

    async def run(self) -> None:
        """Forget expired state every interval, until cancelled."""
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            try:
                await self._blocking.run(self.forget_expired)
            except Exception:
                log.exception("housekeeping failed")
