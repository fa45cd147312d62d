"""The durable revocation log, and the in-memory view of it that every token check consults.

Revocations are rows with a strictly increasing sequence, written in the same transaction as
the change that causes them. The view follows the table by sequence: right after a local
write, and by polling for rows written by other replicas. Streams to other services replay
from the table, then wait on the view for new rows, so a resumed stream has no gap.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from common import errors
from common.auth import RevokedSet
from common.db import Database
from users import store

log = logging.getLogger("mesh.users.revocations")

_SYNC_BATCH = 1000


@dataclass(frozen=True)
class Revocation:
    """One row of the revocation log."""

    sequence: int
    session_id: str
    token_id: str | None
    reason: str
    revoked_at: float
    expires_at: float


def record(
    conn: Connection,
    *,
    session_id: str,
    reason: str,
    revoked_at: float,
    expires_at: float,
    token_id: str | None = None,
) -> None:
    """Append a revocation inside the caller's transaction.

    On PostgreSQL, sequence values can commit out of order, and a reader following the log by
    sequence would skip a row that commits late; the table lock makes writers commit in order.
    SQLite write transactions are serial already.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(
        store.revocations.insert().values(
            session_id=session_id,
            token_id=token_id,
            reason=reason,
            revoked_at=revoked_at,
            expires_at=expires_at,
        )
    )


def end_sessions(
    conn: Connection, session_ids: Iterable[str], *, reason: str, now: float, lifetime: float
) -> list[str]:
    """Revoke sessions (their access tokens and refresh family) in the caller's transaction.

    ``lifetime`` is the longest a token of a session can live, after which the revocation can
    be forgotten. Returns the sessions that were live.
    """
    ended: list[str] = []
    for session_id in session_ids:
        changed = conn.execute(
            store.sessions.update()
            .where(store.sessions.c.id == session_id, store.sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
        ).rowcount
        if changed:
            record(
                conn,
                session_id=session_id,
                reason=reason,
                revoked_at=now,
                expires_at=now + lifetime,
            )
            ended.append(session_id)
    return ended


def _row(row: sa.Row[tuple[int, str, str | None, str, float, float]]) -> Revocation:
    return Revocation(
        sequence=row.seq,
        session_id=row.session_id,
        token_id=row.token_id,
        reason=row.reason,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
    )


class RevocationLog:
    """Answers ``is_revoked`` from memory (a ``RevocationCheck``) and feeds revocation streams."""

    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float,
        max_followers: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._poll_seconds = poll_seconds
        self._follower_slots = threading.BoundedSemaphore(max_followers)
        self._clock = clock
        self._changed = threading.Condition()
        self._sync_lock = threading.Lock()
        self._revoked = RevokedSet()
        self._head = 0
        self._stopped = threading.Event()
        self._poller: threading.Thread | None = None
        self.sync()

    @property
    def head(self) -> int:
        """The largest sequence applied to the in-memory view."""
        return self._head

    def is_revoked(self, *, session_id: str, token_id: str, issued_at: int) -> bool:
        return self._revoked.covers(session_id=session_id, token_id=token_id)

    def rows_after(self, sequence: int, *, limit: int) -> list[Revocation]:
        with self._db.read() as conn:
            result = conn.execute(
                sa.select(store.revocations)
                .where(store.revocations.c.seq > sequence)
                .order_by(store.revocations.c.seq)
                .limit(limit)
            )
            return [_row(row) for row in result]

    def sync(self) -> None:
        """Apply rows written since the last sync, here or by another replica; wake streams."""
        with self._sync_lock:
            now = self._clock()
            while fresh := self.rows_after(self._head, limit=_SYNC_BATCH):
                for revocation in fresh:
                    self._revoked.add(
                        session_id=revocation.session_id,
                        token_id=revocation.token_id,
                        expires_at=revocation.expires_at,
                        now=now,
                    )
                with self._changed:
                    self._head = fresh[-1].sequence
                    self._changed.notify_all()
                if len(fresh) < _SYNC_BATCH:
                    break
            self._revoked.forget_expired(now)

    @contextlib.contextmanager
    def follower_slot(self) -> Iterator[None]:
        """Hold one of the bounded places for a stream, or refuse with RESOURCE_EXHAUSTED.

        Each open stream holds a server thread and needs no credential, so without a bound
        anyone could open enough of them to leave no thread for Login or ValidateToken.
        """
        if not self._follower_slots.acquire(blocking=False):
            raise errors.ResourceExhausted(
                "too many revocation streams are open; retry later", reason="TOO_MANY_STREAMS"
            )
        try:
            yield
        finally:
            self._follower_slots.release()

    def wait_beyond(self, sequence: int, timeout: float) -> bool:
        """Block until the log head passes ``sequence``, the timeout ends, or the log stops."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._head > sequence or self._stopped.is_set(), timeout
            )

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def start(self) -> None:
        self._poller = threading.Thread(target=self._poll, name="revocation-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._changed:
            self._changed.notify_all()
        if self._poller is not None:
            self._poller.join(timeout=5)

    def _poll(self) -> None:
        while not self._stopped.wait(self._poll_seconds):
            try:
                self.sync()
            except Exception:
                log.exception("cannot read the revocation log")


def follow(
    log_: RevocationLog,
    after_sequence: int,
    *,
    active: Callable[[], bool],
    batch: int = 500,
    wait_seconds: float = 1.0,
) -> Iterator[tuple[list[Revocation], bool]]:
    """Batches of revocations after ``after_sequence`` (or all of them, when that is beyond the
    head of this log): stored ones first, then live ones.

    Each batch comes with whether the stream has caught up with the log; the first caught-up
    batch is yielded even when empty, so a follower knows its view is complete. Reading the
    table on every wake-up (rather than a memory buffer) is what makes a resume gap-free.
    """
    # A position beyond this log comes from a log since replaced (a fresh database): waiting
    # for it would withhold the revocations numbered up to it. Replaying everything is safe,
    # as applying a revocation twice changes nothing.
    last = after_sequence if after_sequence <= log_.head else 0
    announced = False
    with log_.follower_slot():
        while active() and not log_.stopped:
            rows = log_.rows_after(last, limit=batch)
            caught_up = len(rows) < batch
            if rows or (caught_up and not announced):
                announced = announced or caught_up
                if rows:
                    last = rows[-1].sequence
                yield rows, caught_up
            if caught_up:
                log_.wait_beyond(last, wait_seconds)
