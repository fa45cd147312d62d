"""Three-way semantic merge of ontology snapshots, field by field.

Each field is merged on its own: a side that left it as in the base takes the other side's
value, identical changes agree, and different changes conflict. Named lists (properties,
parameters) are merged item by item, matched by ``api_name``; ``interfaces``, ``extends`` and
``enum_values`` are sets, so additions and removals from both sides combine. Two sides that
both add a resource (or an item) are merged as if the base were empty. The merged ontology is
checked like any write, so a merge never yields a dangling reference; objects and links merge
the same way (an object's fields are its properties), and their union is checked against the
merged schema.

A conflict can be settled by a :class:`Resolution` naming it (resource key and path, as the
conflict reports them): ours, theirs, or a supplied value (``None``: absent). Every caller
that merges (a merge, a rebase, a revert) passes the same resolutions, and a resolution that
settles nothing is refused, so a stale one never passes unnoticed.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from common import errors
from common.errors import FieldViolation, quoted
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
    normalize,
    prefetch,
    split_key,
)
from oms.objects import (
    DataView,
    check_data,
    is_data_key,
    schema_data_violations,
    schema_part,
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


class Choice(StrEnum):
    """Which value settles a conflict."""

    OURS = "OURS"
    THEIRS = "THEIRS"
    VALUE = "VALUE"


@dataclass(frozen=True)
class Resolution:
    """How to settle the conflict at ``path`` of resource ``key``.

    ``value`` is for ``VALUE``, in the domain's form; ``None`` is absent, which removes the
    field, the item or (at the empty path) the resource.
    """

    key: str
    path: str
    choice: Choice
    value: Any = None


Resolutions = Mapping[tuple[str, str], Resolution]
"""Resolutions by (key, path), the way the merge looks them up."""


def check_resolutions(resolutions: Sequence[Resolution]) -> None:
    """Refuse resolutions that are wrong whatever merge they meet.

    Duplicates and impossible values are each a field violation of one INVALID_ARGUMENT.
    """
    out: list[FieldViolation] = []
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(resolutions):
        where = f"resolutions[{i}]"
        if (r.key, r.path) in seen:
            out.append(
                FieldViolation(where, f"{r.key} {quoted(r.path)} is resolved twice", "DUPLICATE")
            )
        seen.add((r.key, r.path))
        if r.choice is Choice.VALUE and not r.path and r.value is not None:
            try:
                _, api_name = split_key(r.key)
            except errors.InvalidArgument:
                continue  # matches no conflict, and is refused for that
            if not isinstance(r.value, dict) or r.value.get("api_name") != api_name:
                out.append(
                    FieldViolation(
                        f"{where}.value",
                        f"a whole resource: an object with api_name {quoted(api_name)}, or null",
                        "INVALID_VALUE",
                    )
                )
    if out:
        raise errors.invalid(out)


@dataclass(frozen=True)
class MergedSnapshots:
    """What merging theirs into ours yields.

    ``changes`` are to be applied onto ours (``None`` deletes); they are only safe to write
    when ``clean``: every resolution settled a conflict (``unmatched`` holds the positions of
    those that did not), no conflict is left, and no resource of the merged ontology fails a
    write-time check that it passed in ours (``violations``, by resource key).
    """

    changes: dict[str, Resource | None]
    conflicts: tuple[Conflict, ...] = ()
    violations: dict[str, tuple[FieldViolation, ...]] = field(default_factory=dict)
    unmatched: tuple[int, ...] = ()

    @property
    def clean(self) -> bool:
        """Whether the changes may be written."""
        return not self.unmatched and not self.conflicts and not self.violations

    def refuse(self, what: str, metadata: Mapping[str, str]) -> None:
        """Raise the refusal of an unclean merge; ``what`` names the merge in the message.

        INVALID_ARGUMENT for resolutions settling nothing, MERGE_CONFLICT with a detail per
        conflict left, MERGE_INVALID with a violation per problem of the result.
        """
        if self.unmatched:
            raise errors.invalid(
                [
                    FieldViolation(f"resolutions[{i}]", "matches no conflict", "NO_SUCH_CONFLICT")
                    for i in self.unmatched
                ]
            )
        if self.conflicts:
            raise errors.FailedPrecondition(
                f"{what} conflicts in {len(self.conflicts)} places",
                reason="MERGE_CONFLICT",
                metadata=metadata,
                details=self.conflicts,
            )
        if self.violations:
            raise errors.FailedPrecondition(
                f"{what} gives an invalid ontology",
                reason="MERGE_INVALID",
                metadata=metadata,
                violations=[
                    FieldViolation(key, f"{v.field}: {v.description}", v.reason)
                    for key, found in sorted(self.violations.items())
                    for v in found
                ],
            )


def merge_resource(
    base: Resource | None,
    ours: Resource | None,
    theirs: Resource | None,
    *,
    key: str = "",
    resolutions: Resolutions | None = None,
) -> tuple[Resource | None, list[Conflict]]:
    """Merge two versions of one resource descended from ``base`` (``None``: absent).

    Returns the merged resource (``None``: deleted) and the conflicts ``resolutions`` left;
    when there are conflicts the merged value holds ours at the conflicting paths and must
    not be written.
    """
    merger = _Merger(key, resolutions or {})
    return merger.resource(base, ours, theirs), merger.conflicts


def merge_snapshots(
    base: Ontology,
    ours: Ontology,
    theirs: Ontology,
    keys: Iterable[str] | None = None,
    resolutions: Sequence[Resolution] = (),
) -> MergedSnapshots:
    """Merge ``theirs`` into ``ours`` from their merge base ``base``.

    ``resolutions`` (checked first with :func:`check_resolutions`) settle the conflicts they
    name.
    ``keys``, when given, include every key whose content differs between ``base`` and
    ``theirs`` (the others keep ours); only those are read, so the cost follows the size of
    the change rather than of the ontology.
    """
    candidates = set(base) | set(ours) | set(theirs) if keys is None else set(keys)
    for snapshot in (base, ours, theirs):
        prefetch(snapshot, candidates)
    wanted = {(r.key, r.path): r for r in resolutions}
    changes: dict[str, Resource | None] = {}
    conflicts: list[Conflict] = []
    used: set[tuple[str, str]] = set()
    for key in sorted(candidates):
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o == t or t == b:
            continue
        if o == b:
            changes[key] = t
            continue
        merger = _Merger(key, wanted)
        merged = merger.resource(b, o, t)
        used |= {(key, path) for path in merger.used}
        if merger.conflicts:
            conflicts.extend(merger.conflicts)
        elif merged != o:
            changes[key] = merged
    unmatched = tuple(i for i, r in enumerate(resolutions) if (r.key, r.path) not in used)
    if unmatched or conflicts or not changes:
        return MergedSnapshots(changes, tuple(conflicts), unmatched=unmatched)
    after = Overlay(ours, changes)
    violations = check_changes(after, schema_part(changes), before=ours)
    if isinstance(ours, DataView):
        for key, found in _data_violations(after, changes, ours, ours).items():
            violations.setdefault(key, []).extend(found)
    return MergedSnapshots(changes, (), {k: tuple(v) for k, v in violations.items()})


def _data_violations(
    after: Ontology, changes: Mapping[str, Resource | None], ours: Ontology, data: DataView
) -> dict[str, list[FieldViolation]]:
    """The merged data's violations by object, link or object type key.

    Each side's data was valid on its own; their union may not be (two links where one is
    allowed, a link to an object the other side deleted, a unique value taken twice, objects
    of ours that the other side's schema change no longer admits).
    """
    out: dict[str, list[FieldViolation]] = {}
    keys = sorted((k for k in changes if is_data_key(k)), key=len, reverse=True)
    for v in check_data(after, changes, data, where={}):
        key = next(k for k in keys if v.field == k or v.field.startswith(k + "."))
        field = v.field[len(key) + 1 :] or "links"
        out.setdefault(key, []).append(FieldViolation(field, v.description, v.reason))
    for key, found in schema_data_violations(after, changes, ours, data).items():
        out.setdefault(key, []).extend(
            FieldViolation("objects", a.violation().description, a.reason) for a in found
        )
    return out


class _Merger:
    """Collects the conflicts of merging one resource, settling those it has resolutions for."""

    def __init__(self, key: str, resolutions: Resolutions) -> None:
        self.key = key
        self.resolutions = resolutions
        self.conflicts: list[Conflict] = []
        self.used: set[str] = set()
        """The paths a resolution settled."""

    def resource(
        self, base: Resource | None, ours: Resource | None, theirs: Resource | None
    ) -> Any:
        merged = self.record("", base, ours, theirs)
        if self.used and isinstance(merged, dict) and not is_data_key(self.key):
            # A supplied value may leave fields out (absent): they take their defaults.
            merged = normalize(self.key.partition("/")[0], merged)
        return merged

    def conflict(self, path: str, base: Any, ours: Any, theirs: Any) -> Any:
        """The value at a conflicting path: the resolution's, else ours (and a conflict)."""
        resolution = self.resolutions.get((self.key, path))
        if resolution is not None:
            self.used.add(path)
            return {Choice.OURS: ours, Choice.THEIRS: theirs}.get(
                resolution.choice, resolution.value
            )
        if base is None and ours is not None and theirs is not None:
            kind = ConflictKind.BOTH_ADDED
        elif ours is None or theirs is None:
            kind = ConflictKind.MODIFIED_DELETED
        else:
            kind = ConflictKind.BOTH_MODIFIED
        self.conflicts.append(Conflict(self.key, path, kind, base, ours, theirs))
        return ours

    def record(self, path: str, base: dict[str, Any] | None, ours: Any, theirs: Any) -> Any:
        """A resource or a named item: merged field by field unless one side settles it."""
        if ours == theirs or base == theirs:
            return ours
        if base == ours:
            return theirs
        if not isinstance(ours, dict) or not isinstance(theirs, dict):
            return self.conflict(path, base, ours, theirs)
        start = base or {}
        merged: dict[str, Any] = {}
        for name in [*ours, *(k for k in theirs if k not in ours)]:
            sub = f"{path}.{name}" if path else name
            value = self.field(sub, name, start.get(name), ours.get(name), theirs.get(name))
            if value is not None:
                merged[name] = value
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
        return self.conflict(path, base, ours, theirs)

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
        elif theirs_order in (base_order, ours_order):
            order = [*o, *t]
        else:
            chosen = self.conflict(path + ORDER_SUFFIX, base_order, ours_order, theirs_order)
            names = [n for n in chosen if isinstance(n, str)] if isinstance(chosen, list) else []
            order = [*names, *o, *t]
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
