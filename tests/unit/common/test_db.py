"""The database on SQLite: migrations apply once and in order, in WAL mode.

Concurrent read-modify-write transactions lose no update.
"""

import threading

import sqlalchemy as sa

from common.db import Database

metadata = sa.MetaData()
counter = sa.Table(
    "counter", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer)
)


def test_migrations_apply_once_and_in_order(tmp_path):
    applied = []
    migrations = [
        lambda conn: (metadata.create_all(conn), applied.append(1)),
        lambda conn: applied.append(2),
    ]
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert db.migrate(migrations) == 2
    assert Database(f"sqlite:///{tmp_path / 'x.db'}").migrate(migrations) == 2
    assert applied == [1, 2]
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_concurrent_read_modify_write_loses_nothing(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.migrate([metadata.create_all])
    with db.write() as conn:
        conn.execute(counter.insert().values(id=1, n=0))

    def bump():
        for _ in range(25):
            with db.write() as conn:
                n = conn.execute(sa.select(counter.c.n)).scalar_one()
                conn.execute(counter.update().values(n=n + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as conn:
        assert conn.execute(sa.select(counter.c.n)).scalar_one() == 100
