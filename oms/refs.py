"""What a ref names: the one resolver every RPC that accepts a ref goes through.

A ref is a branch name (its head), a tag name (its commit), a full commit id, or a unique
prefix of one of at least :data:`SHORT_ID` hex digits, optionally followed by ``~N`` (the
N-th first-parent ancestor; ``~`` alone is ``~1``, and ``~2~3`` is ``~5``). A name is tried
as a branch, then as a tag, then as a commit id, so a branch or tag whose name looks like hex
hides the commits it would abbreviate, as in git.
"""

from __future__ import annotations

import re

from common import errors
from common.errors import FieldViolation, quoted
from oms.store import CommitRecord, OntologyStore

SHORT_ID = 7
"""The fewest hex digits a short commit id may have."""
FULL_ID = 64
AMBIGUOUS_SHOWN = 10
"""Candidates an ambiguous short id names in its refusal."""
MAX_REF = 256
"""The longest ref read: a name (at most 100 characters) or an id, and its ``~N`` steps.
Anything longer names nothing, and is not parsed."""
_HEX = re.compile(r"[0-9a-f]+")


def _not_found(ref: str) -> errors.NotFound:
    return errors.NotFound(
        f"no branch, tag or commit {quoted(ref)}", reason="REF_NOT_FOUND", metadata={"ref": ref}
    )


def split_ancestry(ref: str) -> tuple[str, int]:
    """``main~2`` -> (``main``, 2); a ref without well-formed ``~`` steps -> (ref, 0).

    No name holds a ``~``, so the first one starts the steps.
    """
    name, *steps = ref.split("~")
    if not name or not steps or not all((s.isascii() and s.isdigit()) or not s for s in steps):
        return ref, 0
    return name, sum(int(s or 1) for s in steps)


class Refs:
    """Resolves refs to commits on a store."""

    def __init__(self, store: OntologyStore) -> None:
        self.store = store

    def resolve(self, ref: str, *, field: str = "ref") -> CommitRecord:
        """The commit ``ref`` names.

        NotFound (REF_NOT_FOUND) when it names none; for an ambiguous short id,
        InvalidArgument (REF_AMBIGUOUS) with ``field`` as the violation's field.
        """
        if len(ref) > MAX_REF:
            raise _not_found(ref[:MAX_REF] + "...")
        name, steps = split_ancestry(ref)
        commit = self._named(name, field)
        for step in range(steps):
            if not commit.parents:
                raise errors.NotFound(
                    f"{quoted(ref)}: {name} has only {step} first-parent ancestor(s)",
                    reason="REF_NOT_FOUND",
                    metadata={"ref": ref},
                )
            commit = self.store.commit(commit.parents[0])
        return commit

    def _named(self, name: str, field: str) -> CommitRecord:
        try:
            return self.store.commit(self.store.branch(name).head)
        except errors.NotFound:
            pass
        tag = self.store.find_tag(name)
        if tag is not None:
            return self.store.commit(tag.commit)
        if len(name) < SHORT_ID or len(name) > FULL_ID or not _HEX.fullmatch(name):
            raise _not_found(name)
        if len(name) == FULL_ID:
            try:
                return self.store.commit(name)
            except errors.NotFound:
                raise _not_found(name) from None
        candidates = self.store.commit_ids(name, limit=AMBIGUOUS_SHOWN + 1)
        if not candidates:
            raise _not_found(name)
        if len(candidates) > 1:
            shown = ", ".join(c[: len(name) + 4] for c in candidates[:AMBIGUOUS_SHOWN])
            more = ", ..." if len(candidates) > AMBIGUOUS_SHOWN else ""
            raise errors.InvalidArgument(
                f"short commit id {quoted(name)} is ambiguous: {shown}{more}",
                reason="REF_AMBIGUOUS",
                metadata={"ref": name, "candidates": ",".join(candidates[:AMBIGUOUS_SHOWN])},
                violations=[
                    FieldViolation(field, f"ambiguous: matches {shown}{more}", "REF_AMBIGUOUS")
                ],
            )
        return self.store.commit(candidates[0])
