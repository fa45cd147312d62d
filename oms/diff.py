"""Per-resource, per-field differences between two ontology snapshots.

Items of named lists (properties, parameters) are matched by ``api_name``, never by position,
so paths read ``properties[employeeId].data_type``; an item added or removed is one change at
``properties[employeeId]``, and a reordering of the items that both sides share is one change
at ``properties#order`` (lists of names). Every other field is compared as one value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oms.model import NAMED_LISTS, Ontology, Resource, by_name, is_named_list, prefetch

ORDER_SUFFIX = "#order"


class ChangeType(StrEnum):
    """What happened to one resource between two snapshots."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class FieldChange:
    """One field that differs; ``None`` stands for "absent" on that side."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ResourceChange:
    """One resource that differs, with the fields that do."""

    key: str
    change_type: ChangeType
    fields: tuple[FieldChange, ...]


def diff_resource(old: Resource | None, new: Resource | None) -> list[FieldChange]:
    """The fields that differ between two versions of one resource.

    An added resource lists each of its fields as new, a deleted one each of its fields as
    old, so that a diff always carries the values a reviewer needs.
    """
    if old is None:
        return [] if new is None else [FieldChange(k, None, v) for k, v in new.items()]
    if new is None:
        return [FieldChange(k, v, None) for k, v in old.items()]
    out: list[FieldChange] = []
    for name in _keys(old, new):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if name in NAMED_LISTS and is_named_list(before) and is_named_list(after):
            out.extend(_diff_named(name, before, after))
        else:
            out.append(FieldChange(name, before, after))
    return out


def diff_snapshots(
    old: Ontology, new: Ontology, keys: Iterable[str] | None = None
) -> list[ResourceChange]:
    """The resources that differ, sorted by key.

    ``keys``, when given, are the only keys that may differ (the store knows them from its
    change log): only those are compared, so the cost follows the size of the change.
    """
    candidates = set(old) | set(new) if keys is None else set(keys)
    prefetch(old, candidates)
    prefetch(new, candidates)
    out: list[ResourceChange] = []
    for key in sorted(candidates):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if before is None:
            change_type = ChangeType.ADDED
        elif after is None:
            change_type = ChangeType.DELETED
        else:
            change_type = ChangeType.MODIFIED
        out.append(ResourceChange(key, change_type, tuple(diff_resource(before, after))))
    return out


def item_path(list_name: str, api_name: str) -> str:
    """The path of one named item: ``properties[employeeId]``."""
    return f"{list_name}[{api_name}]"


def _keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [*old, *(k for k in new if k not in old)]


def _diff_named(
    list_name: str, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> list[FieldChange]:
    before, after = by_name(old), by_name(new)
    out: list[FieldChange] = []
    for name in _keys(before, after):
        path = item_path(list_name, name)
        old_item, new_item = before.get(name), after.get(name)
        if old_item == new_item:
            continue
        if old_item is None or new_item is None:
            out.append(FieldChange(path, old_item, new_item))
            continue
        for field in _keys(old_item, new_item):
            if old_item.get(field) != new_item.get(field):
                out.append(FieldChange(f"{path}.{field}", old_item.get(field), new_item.get(field)))
    shared_old = [n for n in before if n in after]
    shared_new = [n for n in after if n in before]
    if shared_old != shared_new:
        out.append(FieldChange(list_name + ORDER_SUFFIX, shared_old, shared_new))
    return out
