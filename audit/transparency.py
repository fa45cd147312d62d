"""The log as a transparency log: signed checkpoints, kept fresh, and proofs against them.

The log signs a checkpoint at most every ``interval`` seconds while events arrive, and when a
client asks. It never signs one that contradicts the last checkpoint it signed (C2SP
``tlog-checkpoint``): that one is also kept in a file beside the key, outside the database, so
a database rewound together with its stored checkpoints is refused a signature, and reported by
VerifyLog, even after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric

from audit import merkle, tiles
from audit.checkpoints import Checkpoint, NoteError, NoteSigner, VerifierKey
from audit.events import StoredEvent
from audit.store import EventStore
from common import pages, times
from common.blocking import Blocking
from common.errors import FailedPrecondition, FieldViolation, NotFound, OutOfRange, invalid
from common.metrics import gauge

log = logging.getLogger("mesh.audit.transparency")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class InclusionProof:
    """Where an event's leaf sits in a tree, and the hashes that lead from it to the root."""

    leaf_index: int
    tree_size: int
    hashes: list[bytes]


class TransparencyLog:
    """Checkpoints and proofs over an :class:`audit.store.EventStore`; reads block."""

    def __init__(
        self,
        store: EventStore,
        signer: NoteSigner,
        *,
        interval: float,
        last_signed_file: Path,
        blocking: Blocking,
    ) -> None:
        self._store = store
        self._signer = signer
        self._interval = interval
        self._file = last_signed_file
        self._blocking = blocking
        self._arrived = asyncio.Event()
        self._signing = threading.Lock()
        self._last_signed_at = 0.0
        self.last_signed = self._read_last_signed()
        """The newest checkpoint this log signed, as remembered outside the database."""

    def samples(self) -> list[Metric]:
        """The log's size and its newest checkpoint's, with its age; read at scrape time."""
        found: list[Metric] = [
            gauge("mesh_audit_log_events", "Events in the log.", self._store.last_sequence())
        ]
        latest = self._store.checkpoint(None)
        if latest is not None:
            found.append(
                gauge(
                    "mesh_audit_checkpoint_events",
                    "Events the newest checkpoint covers.",
                    latest.size,
                )
            )
            found.append(
                gauge(
                    "mesh_audit_checkpoint_age_seconds",
                    "Time since the newest checkpoint was signed.",
                    max(0, times.now() - latest.signed_ns) / times.SECOND,
                )
            )
        return found

    @property
    def verifier_key(self) -> VerifierKey:
        return self._signer.verifier

    def _read_last_signed(self) -> Checkpoint | None:
        try:
            note = self._file.read_text()
        except FileNotFoundError:
            return None
        try:
            return self._signer.verifier.open(note)
        except NoteError:
            log.error("%s holds no checkpoint signed by this log's key; ignored", self._file)
            return None

    def _remember(self, checkpoint: Checkpoint) -> None:
        partial = self._file.with_name(self._file.name + ".tmp")
        with open(partial, "w") as file:
            file.write(checkpoint.note)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, self._file)
        self.last_signed = checkpoint

    def open_note(self, note: str, field: str) -> Checkpoint:
        """A client's checkpoint, if this log signed it; INVALID_ARGUMENT on ``field`` if not.

        A note whose final newline was lost (a shell's ``$(...)`` strips it) is taken with it:
        that newline follows the signature, so it is not part of what was signed.
        """
        if note and not note.endswith("\n"):
            note += "\n"
        try:
            checkpoint = self._signer.verifier.open(note)
        except NoteError as exc:
            raise invalid([FieldViolation(field, str(exc), "CHECKPOINT_INVALID")]) from exc
        if checkpoint.origin != self._signer.origin:
            raise invalid(
                [FieldViolation(field, "is a checkpoint of another log", "CHECKPOINT_INVALID")]
            )
        return checkpoint

    def sign(self) -> Checkpoint:
        """A checkpoint of the whole log: the newest stored one if it is current, else a new one.

        Refused (FAILED_PRECONDITION, ``LOG_INCONSISTENT``) when the log no longer extends the
        last checkpoint this log signed. One signature at a time: the background signer and a
        client's request may meet.
        """
        with self._signing:
            return self._sign()

    def _sign(self) -> Checkpoint:
        try:
            tree = self._store.tree()
        except LookupError as exc:
            raise FailedPrecondition(
                "the stored Merkle tree is missing tiles", reason="LOG_INCONSISTENT"
            ) from exc
        latest = self._store.checkpoint(None)
        root = tree.root()
        if latest is not None and latest.size == tree.size and latest.root == root:
            return latest
        last = self.last_signed
        if last is not None and not self._extends(tree.size, last):
            log.critical(
                "the log does not extend checkpoint %d (signed earlier): it was truncated or"
                " rewritten; no checkpoint is signed until an operator restores it",
                last.size,
            )
            raise FailedPrecondition(
                f"the log no longer extends the checkpoint of size {last.size} it signed",
                reason="LOG_INCONSISTENT",
                metadata={"tree_size": str(last.size)},
            )
        checkpoint = self._signer.sign(tree.size, root, signed_ns=times.now())
        self._store.add_checkpoint(checkpoint)
        self._remember(checkpoint)
        return checkpoint

    def _extends(self, size: int, last: Checkpoint) -> bool:
        if size < last.size:
            return False
        try:
            return tiles.root_at(self._store.tiles, last.size) == last.root
        except LookupError:  # tiles deleted
            return False

    def checkpoint(self, size: int | None) -> Checkpoint:
        found = self._store.checkpoint(size)
        if found is None and size is None:
            return self.sign()
        if found is None:
            name = f"checkpoints/{size}"
            raise NotFound(
                f"no checkpoint of tree size {size} was signed",
                reason="CHECKPOINT_NOT_FOUND",
                metadata={"name": name},
            )
        return found

    def checkpoints(
        self, *, start_ns: int | None, end_ns: int | None, page_size: int, page_token: str
    ) -> pages.Page[Checkpoint]:
        if page_size < 0:
            raise invalid([FieldViolation("page_size", "must not be negative", "INVALID_VALUE")])
        query = [start_ns, end_ns]
        before = None
        if page_token:
            before = pages.decode(page_token, query=query).get("before")
            if not isinstance(before, int) or isinstance(before, bool):
                raise pages.refuse()
        limit = pages.page_size(page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        found = self._store.find_checkpoints(
            start_ns=start_ns, end_ns=end_ns, before_size=before, limit=limit + 1
        )
        return pages.cut(
            found, limit, lambda last: pages.encode({"before": last.size}, query=query)
        )

    def _tree_size(self, size: int, field: str) -> int:
        """A requested tree size: 0 is the newest checkpoint's; never beyond the log."""
        if size < 0:
            raise invalid([FieldViolation(field, "must not be negative", "INVALID_VALUE")])
        if size == 0:
            return self.checkpoint(None).size
        head = self._store.head().sequence
        if size > head:
            raise OutOfRange(
                f"{field} {size} is beyond the size of the log ({head})",
                reason="TREE_SIZE_OUT_OF_RANGE",
            )
        return size

    def inclusion(self, sequence: int, tree_size: int) -> tuple[InclusionProof, StoredEvent]:
        """The proof that event ``sequence`` is leaf ``sequence - 1`` of a tree, and the event."""
        if sequence < 1:
            raise invalid([FieldViolation("name", "must be events/{sequence}", "INVALID_FORMAT")])
        size = self._tree_size(tree_size, "tree_size")
        if sequence > size:
            raise OutOfRange(
                f"event {sequence} is not in a tree of size {size}",
                reason="SEQUENCE_OUT_OF_RANGE",
            )
        stored = self._store.get(sequence)
        if stored is None:
            raise NotFound(
                f"events/{sequence} does not exist",
                reason="EVENT_NOT_FOUND",
                metadata={"name": f"events/{sequence}"},
            )
        hashes = merkle.build_proof(
            merkle.inclusion_ranges(sequence - 1, size), tiles.node_reader(self._store.tiles)
        )
        return InclusionProof(sequence - 1, size, hashes), stored

    def consistency(self, first: int, second: int) -> tuple[int, list[bytes]]:
        """The proof that the tree of ``second`` leaves extends the tree of ``first``."""
        violations = []
        if first < 1:
            violations.append(
                FieldViolation("first_tree_size", "must be at least 1", "INVALID_VALUE")
            )
        if second < 0:
            violations.append(
                FieldViolation("second_tree_size", "must not be negative", "INVALID_VALUE")
            )
        if violations:
            raise invalid(violations)
        second = self._tree_size(second, "second_tree_size")
        if first > second:
            raise invalid(
                [
                    FieldViolation(
                        "first_tree_size",
                        f"must not be larger than the second tree size ({second})",
                        "INVALID_RANGE",
                    )
                ]
            )
        if first == second:
            return second, []
        return second, merkle.build_proof(
            merkle.consistency_ranges(first, second), tiles.node_reader(self._store.tiles)
        )

    def committed(self, stored: Sequence[StoredEvent]) -> None:
        """Events this server committed (called on the loop): a checkpoint falls due."""
        if stored:
            self._arrived.set()

    async def run(self) -> None:
        """Sign a checkpoint within ``interval`` of any commit; asleep while nothing arrives."""
        while True:
            await self._arrived.wait()
            await asyncio.sleep(max(0.0, self._last_signed_at + self._interval - time.monotonic()))
            self._arrived.clear()
            try:
                await self._blocking.run(self.sign)
            except FailedPrecondition:
                pass  # logged by sign; tried again at the next commit
            except Exception:
                log.exception("signing a checkpoint failed; retrying in %.0f s", self._interval)
                self._arrived.set()
            self._last_signed_at = time.monotonic()
