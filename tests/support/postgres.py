"""A PostgreSQL database of a test's own on the local server, created and dropped around it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The URL of a fresh database; the test is skipped when the server is not reachable."""
    admin = sa.create_engine(
        f"{SERVER}/test", isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    try:
        yield f"{SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
