"""A service's outbox as tests read it: the events waiting for the relay, oldest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class Row:
    """One waiting event, with ``data`` decoded."""

    seq: int
    type: str
    subject: str
    actor: str
    data: dict[str, Any]


def outbox_rows(database_url: str, *, after: int = 0) -> list[Row]:
    """The outbox rows of the database at ``database_url`` past sequence ``after``."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT seq, type, subject, actor, data FROM outbox WHERE seq > :after "
                    "ORDER BY seq"
                ),
                {"after": after},
            ).all()
    finally:
        engine.dispose()
    return [Row(r.seq, r.type, r.subject, r.actor, json.loads(r.data)) for r in rows]


def last_seq(database_url: str) -> int:
    """The sequence of the newest row, 0 when the outbox is empty."""
    rows = outbox_rows(database_url)
    return rows[-1].seq if rows else 0
