"""Commits of other replicas, as they happen: PostgreSQL ``LISTEN`` for :func:`common.db.mark`.

A transaction that marks a topic on PostgreSQL also sends ``NOTIFY`` on the topic's channel
(:func:`common.db.announce`), which the server delivers to every listening session when, and
only if, the transaction commits. One :class:`Notifier` per server holds one such session and
runs the topic's commit listeners (the very ones a local commit runs) in the server's thread
pool, so a revocation, an outbox row or an audit event committed by another replica is acted
on within milliseconds instead of at the next poll.

Notifications are hints, never data: a burst of them for one topic runs its listeners once
more after the current run, and each listener reads what changed from the tables. A lost
session (the database restarting) is reopened within ``retry_seconds``, and every listener runs
once after each (re)connection, since commits made meanwhile were announced to nobody. The
services' polls stay as a slow fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql

from common.blocking import Blocking
from common.db import Database, channel
from common.server import MeshServer

log = logging.getLogger("mesh.notify")


class Notifier:
    """Follows ``topics`` of ``db`` for a server; does nothing on SQLite (one process)."""

    def __init__(
        self,
        db: Database,
        topics: Sequence[str],
        *,
        blocking: Blocking,
        retry_seconds: float = 1.0,
    ) -> None:
        self._db = db
        self._channels = {channel(db.url, topic): topic for topic in topics}
        self._blocking = blocking
        self._retry_seconds = retry_seconds
        self._pending: dict[str, asyncio.Event] = {}

    def attach(self, server: MeshServer) -> None:
        if not self._db.is_sqlite:
            server.background.append(self.run)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        self._pending = {topic: asyncio.Event() for topic in self._channels.values()}
        workers = [asyncio.create_task(self._dispatch(t)) for t in self._pending]
        try:
            while True:
                try:
                    await self._listen()
                except (psycopg.Error, OSError) as exc:
                    log.warning("lost the database's notifications", extra={"error": str(exc)})
                await asyncio.sleep(self._retry_seconds)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _listen(self) -> None:
        conninfo = self._db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            for name in self._channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
            for event in self._pending.values():
                event.set()  # what committed while nobody listened
            async for notice in conn.notifies():
                topic = self._channels.get(notice.channel)
                if topic is not None and notice.payload != self._db.id:
                    self._pending[topic].set()

    async def _dispatch(self, topic: str) -> None:
        """Run ``topic``'s listeners once per wake-up, however many notices woke it."""
        pending = self._pending[topic]
        while True:
            await pending.wait()
            pending.clear()
            try:
                await self._blocking.run(self._db.notify_listeners, topic)
            except Exception:
                log.exception("a commit listener failed", extra={"topic": topic})
