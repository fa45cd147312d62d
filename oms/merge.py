"""Three-way semantic merge of ontology snapshots, field by field.

Each field is merged on its own: a side that left it as in the base takes the other side's
value, identical changes agree, and different changes conflict. Named lists (properties,
parameters) are merged item by item, matched by ``api_name``; ``interfaces``, ``extends`` and
``enum_values`` are sets, so additions and removals from both sides combine. Two sides that
both add a resource (or an item) are merged as if the base were empty. The merged ontology is
checked like any write, so a merge never yields a dangling reference.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from common.errors import FieldViolation
from oms.checks import check_changes
from oms.diff import ORDER_SUFFIX, item_path
from oms.model import (
    NAMED_LISTS,
    SET_LISTS,
    Ontology,
    Overlay,
    Resource,
    by_name,
    is_named_list,
    prefetch,
)


class ConflictKind(StrEnum):
    """Why two sides could not be reconciled at one path."""

    BOTH_MODIFIED = "BOTH_MODIFIED"
    MODIFIED_DELETED = "MODIFIED_DELETED"
    BOTH_ADDED = "BOTH_ADDED"


@dataclass(frozen=True)
class Conflict:
    """One path both sides changed differently; ``None`` stands for "absent" on that side."""

    key: str
    path: str
    kind: ConflictKind
    base: Any
    ours: Any
    theirs: Any


@dataclass(frozen=True)
class MergedSnapshots:
    """What merging theirs into ours yields.

    ``changes`` are to be applied onto ours (``None`` deletes); they are only safe to write
    when ``clean``: no conflicts, and no resource of the merged ontology fails a write-time
    check that it passed in ours (``violations``, by resource key).
    """

    changes: dict[str, Resource | None]
    conflicts: tuple[Conflict, ...] = ()
    violations: dict[str, tuple[FieldViolation, ...]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Whether the changes may be written."""
        return not self.conflicts and not self.violations


def merge_resource(
    base: Resource | None, ours: Resource | None, theirs: Resource | None, *, key: str = ""
) -> tuple[Resource | None, list[Conflict]]:
    """Merge two versions of one resource descended from ``base`` (``None``: absent).

    Returns the merged resource (``None``: deleted) and the conflicts; when there are
    conflicts the merged value holds ours at the conflicting paths and must not be written.
    """
    merger = _Merger(key)
    merged = merger.record("", base, ours, theirs)
    return merged, merger.conflicts


def merge_snapshots(
    base: Ontology, ours: Ontology, theirs: Ontology, keys: Iterable[str] | None = None
) -> MergedSnapshots:
    """Merge ``theirs`` into ``ours`` from their merge base ``base``.

    ``keys``, when given, are the only keys that may differ between the three (the union of
    both sides' changes since the base); only those are read, so the cost follows the size of
    the change rather than of the ontology.
    """
    candidates = set(base) | set(ours) | set(theirs) if keys is None else set(keys)
    for snapshot in (base, ours, theirs):
        prefetch(snapshot, candidates)
    changes: dict[str, Resource | None] = {}
    conflicts: list[Conflict] = []
    for key in sorted(candidates):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o == t or t == b:
            continue
        if o == b:
            changes[key] = t
            continue
        merged, found = merge_resource(b, o, t, key=key)
        if found:
            conflicts.extend(found)
        elif merged != o:
            changes[key] = merged
    if conflicts or not changes:
        return MergedSnapshots(changes, tuple(conflicts))
    violations = check_changes(Overlay(ours, changes), changes, before=ours)
    return MergedSnapshots(changes, (), {k: tuple(v) for k, v in violations.items()})


class _Merger:
    """Collects the conflicts of merging one resource."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.conflicts: list[Conflict] = []

    def conflict(self, path: str, base: Any, ours: Any, theirs: Any) -> None:
        if base is None and ours is not None and theirs is not None:
            kind = ConflictKind.BOTH_ADDED
        elif ours is None or theirs is None:
            kind = ConflictKind.MODIFIED_DELETED
        else:
            kind = ConflictKind.BOTH_MODIFIED
        self.conflicts.append(Conflict(self.key, path, kind, base, ours, theirs))

    def record(self, path: str, base: dict[str, Any] | None, ours: Any, theirs: Any) -> Any:
        """A resource or a named item: merged field by field unless one side settles it."""
        if ours == theirs or base == theirs:
            return ours
        if base == ours:
            return theirs
        if not isinstance(ours, dict) or not isinstance(theirs, dict):
            self.conflict(path, base, ours, theirs)
            return ours
        start = base or {}
        merged: dict[str, Any] = {}
        for name in [*ours, *(k for k in theirs if k not in ours)]:
            sub = f"{path}.{name}" if path else name
            merged[name] = self.field(sub, name, start.get(name), ours.get(name), theirs.get(name))
        return merged

    def field(self, path: str, name: str, base: Any, ours: Any, theirs: Any) -> Any:
        if ours == theirs or base == theirs:
            return ours
        if base == ours:
            return theirs
        lists = isinstance(ours, list) and isinstance(theirs, list)
        if lists and name in NAMED_LISTS and is_named_list(ours) and is_named_list(theirs):
            start = base if is_named_list(base) else []
            return self.named(path, start, ours, theirs)
        if lists and name in SET_LISTS:
            start = base if isinstance(base, list) else []
            return _merge_set(start, ours, theirs)
        self.conflict(path, base, ours, theirs)
        return ours

    def named(
        self,
        path: str,
        base: list[dict[str, Any]],
        ours: list[dict[str, Any]],
        theirs: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        b, o, t = by_name(base), by_name(ours), by_name(theirs)
        merged: dict[str, dict[str, Any]] = {}
        for name in [*o, *(n for n in t if n not in o)]:
            item = self.record(item_path(path, name), b.get(name), o.get(name), t.get(name))
            if item is not None:
                merged[name] = item
        base_order = [n for n in b if n in o and n in t]
        ours_order = [n for n in o if n in b and n in t]
        theirs_order = [n for n in t if n in b and n in o]
        if ours_order == base_order:
            order = [*t, *o]
        else:
            if theirs_order not in (base_order, ours_order):
                self.conflict(path + ORDER_SUFFIX, base_order, ours_order, theirs_order)
            order = [*o, *t]
        return [merged[n] for n in dict.fromkeys(order) if n in merged]


def _merge_set(base: list[Any], ours: list[Any], theirs: list[Any]) -> list[Any]:
    """Ours, without what theirs removed from the base, plus what theirs added."""
    in_base, in_ours, in_theirs = _lookup(base), _lookup(ours), _lookup(theirs)
    removed = _lookup([x for x in base if x not in in_theirs])
    added = [x for x in theirs if x not in in_base and x not in in_ours]
    return [x for x in ours if x not in removed] + added


def _lookup(items: list[Any]) -> Container[Any]:
    """Fast membership for lists of names; malformed lists keep the slow list scan."""
    return set(items) if all(isinstance(x, str) for x in items) else items
