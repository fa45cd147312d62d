"""What the Audit Service needs from the log's storage, independent of how it is kept.

:class:`audit.sql_store.SqlEventStore` implements it on SQLite or PostgreSQL. The store
assigns sequences and chains hashes as it appends (:mod:`audit.chain`), because only it knows
which events committed in which order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from audit.checkpoints import Checkpoint
from audit.events import Event, EventFilter, Recorded, StoredEvent
from audit.tiles import TiledTree, TileKey
from common.errors import MeshError


class Head(NamedTuple):
    """The head row and the highest sequence actually stored.

    The head row is 0 and the genesis hash when the log is empty or the row is missing. The two
    sequences differ only when the log was tampered with.
    """

    sequence: int
    hash: str
    last_stored: int


class EventStore(Protocol):
    """Reads and appends of the log; every method is atomic."""

    def append(self, batch: Sequence[Event]) -> list[Recorded | MeshError]:
        """Record ``batch`` in one transaction, in order; one outcome per event.

        A (source, id) already stored, or earlier in the batch, yields the original as a
        duplicate if the content is the same and a conflict error if it is not.
        """
        ...

    def head(self) -> Head:
        """The recorded head and the highest stored sequence, as of one moment."""
        ...

    def last_sequence(self) -> int:
        """The highest sequence actually stored, whatever the head row says."""
        ...

    def get(self, sequence: int) -> StoredEvent | None: ...

    def find(
        self,
        selection: EventFilter,
        *,
        after: int = 0,
        before: int | None = None,
        newest_first: bool = False,
        limit: int,
    ) -> list[StoredEvent]:
        """Matching events with ``after < sequence < before``, in sequence order or reversed."""
        ...

    def scan(self, start: int, end: int, *, chunk: int = 1000) -> Iterator[StoredEvent]:
        """Every stored event with ``start <= sequence <= end``, in order, read in chunks."""
        ...

    def tree(self) -> TiledTree:
        """The Merkle tree over every event up to the recorded head."""
        ...

    def tiles(self, keys: Sequence[TileKey]) -> dict[TileKey, list[bytes]]:
        """The stored tiles of ``keys`` that exist, as lists of hashes."""
        ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint; one of the same tree size already stored is kept."""
        ...

    def checkpoint(self, size: int | None) -> Checkpoint | None:
        """The stored checkpoint of a tree size, or the largest one (``None``)."""
        ...

    def find_checkpoints(
        self, *, start_ns: int | None, end_ns: int | None, before_size: int | None, limit: int
    ) -> list[Checkpoint]:
        """Stored checkpoints signed in ``[start_ns, end_ns)`` below a size, newest first."""
        ...

    def ticket_key(self) -> bytes:
        """The key subscription tickets are signed with, shared by every replica of the log."""
        ...

    def migrate(self) -> None: ...

    def close(self) -> None: ...
