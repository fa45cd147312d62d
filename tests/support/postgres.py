"""A PostgreSQL database of a test's own on the local server, created and dropped around it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@contextlib.contextmanager
def fresh_database(server: str, prefix: str) -> Iterator[str]:
    """The URL of a new database on ``server`` (a URL without a database), dropped afterwards.

    The CREATE and DROP run in the ``postgres`` database. A server that is not reachable
    raises ``sqlalchemy.exc.OperationalError`` within seconds, before anything is yielded.
    The benchmarks that need a scratch database share this one.
    """
    admin = sa.create_engine(
        f"{server}/postgres",
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        admin.dispose()
        raise
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The URL of a fresh database; the test is skipped when the server is not reachable."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(fresh_database(SERVER, prefix))
        except sa.exc.OperationalError:
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
        yield url
