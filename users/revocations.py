"""The durable revocation log, and the in-memory view of it that every token check consults.

Revocations are rows with a strictly increasing sequence, written in the same transaction as
the change that causes them. The view follows the table by sequence: as soon as a local write
that recorded one commits, and by polling for rows written by other replicas. Streams to other
services replay from the table, then take new rows from the view's fan-out, each through a
bounded buffer, so a resumed stream has no gap and a slow one cannot hold up the rest.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable

from common import errors, times
from common.auth import RevokedSet
from common.blocking import Blocking
from common.streams import StreamBuffer, fell_behind
from users.store import Revocation, UserStore, UserWrites

log = logging.getLogger("mesh.users.revocations")

_SYNC_BATCH = 1000


def end_sessions(
    tx: UserWrites, session_ids: Iterable[str], *, reason: str, now_ns: int, lifetime_ns: int
) -> list[str]:
    """Revoke sessions (their access tokens and refresh family) in the caller's transaction.

    ``lifetime_ns`` is the longest a token of a session can live, after which the revocation
    can be forgotten. Returns the sessions that were live.
    """
    ended: list[str] = []
    for session_id in session_ids:
        if tx.end_session(session_id, reason=reason, revoked_ns=now_ns):
            tx.record_revocation(
                session_id=session_id,
                token_id=None,
                reason=reason,
                revoked_ns=now_ns,
                expires_ns=now_ns + lifetime_ns,
            )
            ended.append(session_id)
    return ended


class RevocationLog:
    """Answers ``is_revoked`` from memory (a ``RevocationCheck``) and feeds revocation streams.

    The view is synced in whichever thread commits a revocation (or by the poll); streams live
    on the event loop, which the fan-out reaches with ``call_soon_threadsafe``.
    """

    def __init__(
        self,
        store: UserStore,
        *,
        blocking: Blocking,
        poll_seconds: float | None,
        buffer: int,
        clock: Callable[[], int] = times.now,
    ) -> None:
        self._store = store
        self._blocking = blocking
        self._poll_seconds = poll_seconds
        self._buffer = buffer
        self._clock = clock
        self._sync_lock = threading.Lock()
        self._revoked = RevokedSet()
        self._head = 0
        self._published = 0
        self._followers: set[StreamBuffer[list[Revocation]]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self.sync()
        self._published = self._head
        store.on_revocation(self.sync)

    @property
    def head(self) -> int:
        """The largest sequence applied to the in-memory view."""
        return self._head

    def is_revoked(self, *, session_id: str, token_id: str) -> bool:
        return self._revoked.covers(session_id=session_id, token_id=token_id)

    async def confirm(self, token: str) -> None:
        return None  # this is the authority: its memory view is always current

    def sync(self) -> None:
        """Apply rows written since the last sync, here or by another replica; feed streams."""
        with self._sync_lock:
            now = self._clock()
            while fresh := self._store.revocations_after(self._head, limit=_SYNC_BATCH):
                for revocation in fresh:
                    self._revoked.add(
                        session_id=revocation.session_id,
                        token_id=revocation.token_id,
                        expires_ns=revocation.expires_ns,
                        now_ns=now,
                    )
                self._head = fresh[-1].sequence
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._publish, fresh)
                if len(fresh) < _SYNC_BATCH:
                    break
            self._revoked.forget_expired(now)

    def _publish(self, batch: list[Revocation]) -> None:
        self._published = batch[-1].sequence
        for follower in self._followers:
            follower.offer(batch)

    async def run(self) -> None:
        """Feed the streams from this loop; poll for other replicas' revocations, if any.

        Without ``poll_seconds`` (SQLite, which no other process writes) nothing is read
        between this replica's own commits, so an idle server does no work for it.
        """
        self._loop = asyncio.get_running_loop()
        if self._poll_seconds is None:
            return
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self._blocking.run(self.sync)
            except errors.MeshError as exc:
                log.warning("cannot read the revocation log", extra={"error": exc.message})

    def stop(self) -> None:
        """End every stream (the server is draining); new ones are refused."""
        self._stopped = True
        for follower in self._followers:
            follower.end()

    async def follow(
        self, after_sequence: int, *, batch: int = 500
    ) -> AsyncIterator[tuple[list[Revocation], bool]]:
        """Batches of revocations after ``after_sequence``: stored ones first, then live ones.

        All of them, when ``after_sequence`` is beyond the head of this log.

        Each batch comes with whether the stream has caught up with the log; the first
        caught-up batch is yielded even when empty, so a follower knows its view is complete.
        Ends when the log stops; RESOURCE_EXHAUSTED when the reader fell too far behind.
        """
        if self._stopped:
            raise errors.Unavailable("the User Service is stopping", reason="SHUTTING_DOWN")
        self._loop = asyncio.get_running_loop()
        # A position beyond this log comes from a log since replaced (a fresh database):
        # waiting for it would withhold the revocations numbered up to it. Replaying
        # everything is safe, as applying a revocation twice changes nothing.
        last = after_sequence if after_sequence <= self._head else 0
        while (
            len(rows := await self._blocking.run(self._store.revocations_after, last, limit=batch))
            == batch
        ):
            last = rows[-1].sequence
            yield rows, False
        follower: StreamBuffer[list[Revocation]] = StreamBuffer(self._buffer)
        self._followers.add(follower)
        try:
            # Rows up to the position published when we registered reach us only from the
            # table; later ones come through the buffer too (and are skipped if already sent).
            published = self._published
            while True:
                if rows:
                    last = rows[-1].sequence
                if last >= published:
                    break
                more = await self._blocking.run(self._store.revocations_after, last, limit=batch)
                if not more:
                    break
                if rows:
                    yield rows, False
                rows = more
            yield rows, True
            while (fresh := await follower.get()) is not None:
                rows = [r for r in fresh if r.sequence > last]
                if rows:
                    last = rows[-1].sequence
                    yield rows, True
            if follower.overflowed:
                raise fell_behind(last)
        finally:
            self._followers.discard(follower)
            follower.close()
