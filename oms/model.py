"""The ontology as plain data: resource shapes, their defaults, and how resources are named.

A resource is a JSON-like ``dict`` so that the store, the diff and the merge handle every kind
alike; this module fixes each kind's fields and their defaults. An ontology snapshot maps keys
``"<collection>/<api_name>"`` to normalized resources.

Action rules (``action_type.rules[]``) need exactly these fields per kind, every other rule
field being left empty:

- ``CREATE_OBJECT``: ``object_type``; ``values`` maps each property set on the new object to a
  parameter typed like it, and must cover the primary key and every required property.
- ``MODIFY_OBJECT``: ``object_type`` and ``object_parameter`` (a parameter referencing objects of
  that type); ``values`` (at least one, never the primary key) as for ``CREATE_OBJECT``.
- ``DELETE_OBJECT``: ``object_type`` and ``object_parameter``.
- ``CREATE_LINK`` / ``DELETE_LINK``: ``link_type``; ``values`` is exactly
  ``{"from": <parameter>, "to": <parameter>}``, parameters referencing objects of the link's
  ``from_object_type`` and ``to_object_type``.

An action type's ``submission_criteria`` (stored only when there are some) are conditions
ExecuteAction checks first: each tests a parameter, a property of the object a parameter
references, or the caller (:mod:`oms.actions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, Protocol, TypeGuard, runtime_checkable

from common.errors import FieldViolation, InvalidArgument, quoted
from common.permissions import Permission

Resource = dict[str, Any]
"""One normalized resource: a JSON-like dict with every field of its kind present."""

Ontology = Mapping[str, Resource]
"""An ontology as its resources, ``"<collection>/<api_name>"`` -> normalized resource: a stored
snapshot, or one with changes laid over it."""

OBJECT_TYPES = "object-types"
LINK_TYPES = "link-types"
ACTION_TYPES = "action-types"
INTERFACES = "interfaces"
SHARED_PROPERTIES = "shared-properties"

COLLECTIONS = (OBJECT_TYPES, LINK_TYPES, ACTION_TYPES, INTERFACES, SHARED_PROPERTIES)
"""Every collection of the ontology, in the order they are usually listed; spelt as in the URLs
(``/api/v1/schemas/{branch}/object-types``), so a key reads as the tail of its resource's path."""

LEGACY_COLLECTIONS = {
    "objectTypes": OBJECT_TYPES,
    "linkTypes": LINK_TYPES,
    "actionTypes": ACTION_TYPES,
    "sharedProperties": SHARED_PROPERTIES,
}
"""The camelCase spelling of releases up to 2026-12-01, still accepted in requests (deprecated)
and still the spelling the store hashes, so that existing commit ids stay what they were."""

SINGULAR = {
    OBJECT_TYPES: "object_type",
    LINK_TYPES: "link_type",
    ACTION_TYPES: "action_type",
    INTERFACES: "interface",
    SHARED_PROPERTIES: "shared_property",
}
"""The request field that carries a resource of each collection; prefixes violation paths."""

PASCAL_CASE_KINDS = frozenset({OBJECT_TYPES, INTERFACES})
"""Collections whose api_name is PascalCase; the others use camelCase."""

NAMED_LISTS = frozenset({"properties", "parameters"})
"""List fields whose items are matched by ``api_name`` (never by position) in diff and merge."""

SET_LISTS = frozenset({"interfaces", "extends", "enum_values"})
"""List fields of names whose order carries no meaning: merged as sets of additions and removals.

Action rules are not among them: a rule edited on both sides would otherwise survive twice."""


class Status(StrEnum):
    """Lifecycle of an object type."""

    ACTIVE = "ACTIVE"
    EXPERIMENTAL = "EXPERIMENTAL"
    DEPRECATED = "DEPRECATED"


class BaseType(StrEnum):
    """Scalar data types of properties and parameters; any of them may be an array."""

    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    LONG = "long"
    DOUBLE = "double"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    JSON = "json"
    GEOPOINT = "geopoint"


class Cardinality(StrEnum):
    """How many objects each end of a link type may have: ``<from>_TO_<to>``."""

    ONE_TO_ONE = "ONE_TO_ONE"
    ONE_TO_MANY = "ONE_TO_MANY"
    MANY_TO_ONE = "MANY_TO_ONE"
    MANY_TO_MANY = "MANY_TO_MANY"


class RuleKind(StrEnum):
    """What one rule of an action type does when the action runs."""

    CREATE_OBJECT = "CREATE_OBJECT"
    MODIFY_OBJECT = "MODIFY_OBJECT"
    DELETE_OBJECT = "DELETE_OBJECT"
    CREATE_LINK = "CREATE_LINK"
    DELETE_LINK = "DELETE_LINK"


DEFAULT_ACTION_PERMISSION = Permission.ACTION_EXECUTE.value


def resource_key(collection: str, api_name: str) -> str:
    """The snapshot key of a resource; the one place that spells the key format."""
    return f"{collection}/{api_name}"


def canonical_key(key: str) -> str:
    """A key as the API spells it: one in the legacy spelling (``objectTypes/X``) is translated."""
    collection, sep, rest = key.partition("/")
    current = LEGACY_COLLECTIONS.get(collection)
    return f"{current}/{rest}" if current and sep else key


def split_key(key: str) -> tuple[str, str]:
    """``"object-types/Employee"`` -> ``("object-types", "Employee")``; refuses malformed keys."""
    collection, sep, api_name = key.partition("/")
    if not sep or collection not in COLLECTIONS or not api_name or "/" in api_name:
        raise InvalidArgument(
            f"not a resource key: {quoted(key)}",
            reason="INVALID_RESOURCE_KEY",
            violations=[
                FieldViolation("name", f"not a resource key: {quoted(key)}", "INVALID_VALUE")
            ],
        )
    return collection, api_name


def _clone(value: Any) -> Any:
    """A copy of JSON-like data (mappings and sequences rebuilt, scalars shared).

    Several times faster than ``copy.deepcopy``, which matters when a whole ontology is loaded
    at once.
    """
    kind = type(value)
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        return {k: _clone(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_clone(v) for v in value]
    return value


def _data_type(value: Any) -> Any:
    if type(value) is not dict and not isinstance(value, Mapping):
        return _clone(value)
    out: dict[str, Any] = {
        "base": _clone(value.get("base", "")),
        "array": _clone(value.get("array", False)),
    }
    out.update({k: _clone(v) for k, v in value.items() if k not in out})
    return out


Fields = dict[str, Callable[[Mapping[str, Any]], Any]]
"""Field name -> default from the (raw) resource; the insertion order is the canonical order."""


def _name_default(raw: Mapping[str, Any]) -> Any:
    return raw.get("api_name", "")


_PROPERTY: Fields = {
    "api_name": lambda raw: "",
    "display_name": _name_default,
    "description": lambda raw: "",
    "data_type": lambda raw: {"base": "", "array": False},
    "required": lambda raw: False,
    "unique": lambda raw: False,
    "enum_values": lambda raw: [],
    "shared_property": lambda raw: "",
}

_PARAMETER: Fields = {
    "api_name": lambda raw: "",
    "display_name": _name_default,
    "description": lambda raw: "",
    "data_type": lambda raw: None,
    "object_type": lambda raw: "",
    "required": lambda raw: False,
}

_RULE: Fields = {
    "kind": lambda raw: "",
    "object_type": lambda raw: "",
    "link_type": lambda raw: "",
    "object_parameter": lambda raw: "",
    "values": lambda raw: {},
}

_CRITERION: Fields = {
    "parameter": lambda raw: "",
    "property": lambda raw: "",
    "operator": lambda raw: "",
    "value": lambda raw: None,
    "caller_permission": lambda raw: "",
    "caller_role": lambda raw: "",
    "message": lambda raw: "",
}

SPARSE_FIELDS = frozenset({"submission_criteria"})
"""Resource fields stored only when not empty, so that resources stored before the field
existed keep their content hash."""

_RESOURCE: dict[str, Fields] = {
    OBJECT_TYPES: {
        "api_name": lambda raw: "",
        "display_name": _name_default,
        "description": lambda raw: "",
        "status": lambda raw: Status.ACTIVE.value,
        "primary_key": lambda raw: "",
        "title_property": lambda raw: raw.get("primary_key", ""),
        "properties": lambda raw: [],
        "interfaces": lambda raw: [],
    },
    LINK_TYPES: {
        "api_name": lambda raw: "",
        "display_name": _name_default,
        "description": lambda raw: "",
        "from_object_type": lambda raw: "",
        "to_object_type": lambda raw: "",
        "cardinality": lambda raw: "",
    },
    ACTION_TYPES: {
        "api_name": lambda raw: "",
        "display_name": _name_default,
        "description": lambda raw: "",
        "permission": lambda raw: DEFAULT_ACTION_PERMISSION,
        "parameters": lambda raw: [],
        "rules": lambda raw: [],
        "submission_criteria": lambda raw: [],
    },
    INTERFACES: {
        "api_name": lambda raw: "",
        "display_name": _name_default,
        "description": lambda raw: "",
        "properties": lambda raw: [],
        "extends": lambda raw: [],
    },
    SHARED_PROPERTIES: {
        "api_name": lambda raw: "",
        "display_name": _name_default,
        "description": lambda raw: "",
        "data_type": lambda raw: {"base": "", "array": False},
        "enum_values": lambda raw: [],
    },
}

FIELDS: Mapping[str, tuple[str, ...]] = {c: tuple(f) for c, f in _RESOURCE.items()}
"""The known fields of each collection, in canonical order."""

SPARSE_FLAGS = frozenset({"deprecated"})
"""Property flags stored only when true, so that resources stored before a flag existed keep
their content hash and show no change."""

PROPERTY_FIELDS = frozenset(_PROPERTY) | SPARSE_FLAGS
PARAMETER_FIELDS = frozenset(_PARAMETER)
RULE_FIELDS = frozenset(_RULE)
CRITERION_FIELDS = frozenset(_CRITERION)
"""The known fields of the items of a resource (their order is fixed by normalize)."""


_MISSING = object()
_REBUILT = frozenset({"properties", "parameters", "rules", "submission_criteria", "data_type"})
"""Fields that normalization rebuilds item by item, copying as it goes."""


def _fill(raw: Mapping[str, Any], fields: Fields) -> dict[str, Any]:
    """Known fields first in canonical order, then unknown ones (kept so checks can name them).

    Values are copied, except those of :data:`_REBUILT` fields, left to their rebuilders.
    """
    out: dict[str, Any] = {}
    for name, default in fields.items():
        value = raw.get(name, _MISSING)
        if value is _MISSING:
            out[name] = default(raw)
        else:
            out[name] = value if name in _REBUILT else _clone(value)
    extra = raw.keys() - fields.keys()
    for name in sorted(extra, key=str) if extra else ():
        out[name] = _clone(raw[name])
    return out


def _items(value: Any, fields: Fields) -> Any:
    if not isinstance(value, list | tuple):
        return _clone(value)
    return [
        _item(item, fields) if type(item) is dict or isinstance(item, Mapping) else _clone(item)
        for item in value
    ]


def _item(raw: Mapping[str, Any], fields: Fields) -> dict[str, Any]:
    out = _fill(raw, fields)
    if "data_type" in fields:
        out["data_type"] = _data_type(out["data_type"])
    return out


def _drop_unset_flags(item: Any) -> None:
    if isinstance(item, dict):
        for flag in SPARSE_FLAGS & item.keys():
            if item[flag] is False:
                del item[flag]


def normalize(collection: str, resource: Mapping[str, Any]) -> Resource:
    """A deep copy of ``resource`` with every field of its kind present, in canonical order.

    Lists keep the caller's order (display order is theirs to choose); nothing is validated or
    dropped here, so that :func:`oms.checks.check_resource` can report every problem.
    Normalizing twice gives the same result.
    """
    fields = _RESOURCE.get(collection)
    if fields is None:
        raise InvalidArgument(
            f"unknown ontology collection {quoted(collection)}",
            reason="UNKNOWN_COLLECTION",
            violations=[FieldViolation("collection", f"must be one of {', '.join(COLLECTIONS)}")],
        )
    out = _item(resource, fields)
    if "properties" in out:
        out["properties"] = _items(out["properties"], _PROPERTY)
        for prop in out["properties"] if isinstance(out["properties"], list) else ():
            _drop_unset_flags(prop)
    if "parameters" in out:
        out["parameters"] = _items(out["parameters"], _PARAMETER)
    if "rules" in out:
        out["rules"] = _items(out["rules"], _RULE)
    if "submission_criteria" in out:
        out["submission_criteria"] = _items(out["submission_criteria"], _CRITERION)
    for name in SPARSE_FIELDS & out.keys():
        if out[name] == []:
            del out[name]
    return out


def references(collection: str, resource: Resource) -> list[tuple[str, str]]:
    """Every ``(target key, field path)`` a resource refers to; malformed parts refer to nothing."""
    out: list[tuple[str, str]] = []

    def add(target_collection: str, value: Any, path: str) -> None:
        if isinstance(value, str) and value:
            out.append((resource_key(target_collection, value), path))

    if collection == LINK_TYPES:
        add(OBJECT_TYPES, resource.get("from_object_type"), "from_object_type")
        add(OBJECT_TYPES, resource.get("to_object_type"), "to_object_type")
    elif collection == ACTION_TYPES:
        for i, param in enumerate(_as_list(resource.get("parameters"))):
            if isinstance(param, dict):
                add(OBJECT_TYPES, param.get("object_type"), f"parameters[{i}].object_type")
        for i, rule in enumerate(_as_list(resource.get("rules"))):
            if isinstance(rule, dict):
                add(OBJECT_TYPES, rule.get("object_type"), f"rules[{i}].object_type")
                add(LINK_TYPES, rule.get("link_type"), f"rules[{i}].link_type")
    if collection in (OBJECT_TYPES, INTERFACES):
        for i, prop in enumerate(_as_list(resource.get("properties"))):
            if isinstance(prop, dict):
                add(
                    SHARED_PROPERTIES,
                    prop.get("shared_property"),
                    f"properties[{i}].shared_property",
                )
        field = "interfaces" if collection == OBJECT_TYPES else "extends"
        for i, name in enumerate(_as_list(resource.get(field))):
            add(INTERFACES, name, f"{field}[{i}]")
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@runtime_checkable
class ReferenceIndexed(Protocol):
    """A snapshot that knows who refers to a resource without reading the others.

    The store's snapshots are such, through their reverse-reference index.
    """

    def referrers(self, key: str) -> frozenset[str] | None:
        """Keys of the resources referring to ``key``; ``None`` when no index is kept."""


def referrers(snapshot: Ontology, key: str) -> frozenset[str] | None:
    """The indexed referrers of ``key``, or ``None`` when they can only be found by a scan."""
    if isinstance(snapshot, ReferenceIndexed):
        return snapshot.referrers(key)
    return None


class Overlay(Mapping[str, Resource]):
    """A snapshot seen with some changes applied (``None`` deletes), without copying it.

    Lets checks and merges look at "the ontology after this change" in time proportional to
    the change, not to the ontology.
    """

    def __init__(self, base: Ontology, changes: Mapping[str, Resource | None]) -> None:
        self._base = base
        self._changes = changes
        self._added_refs: dict[str, set[str]] | None = None

    def __getitem__(self, key: str) -> Resource:
        if key in self._changes:
            value = self._changes[key]
            if value is None:
                raise KeyError(key)
            return value
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and key in self._changes:
            return self._changes[key] is not None
        return key in self._base

    def __iter__(self) -> Iterator[str]:
        for key in self._base:
            if key not in self._changes:
                yield key
        for key, value in self._changes.items():
            if value is not None:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def prefetch(self, keys: Iterable[str]) -> None:
        """Pass bulk loads on to the underlying snapshot."""
        prefetch(self._base, [k for k in keys if k not in self._changes])

    def referrers(self, key: str) -> frozenset[str] | None:
        """The base's referrers, less the changed resources, plus those now referring to ``key``.

        ``None`` when the base keeps no index.
        """
        indexed = referrers(self._base, key)
        if indexed is None:
            return None
        if self._added_refs is None:
            self._added_refs = {}
            for changed, resource in self._changes.items():
                if resource is not None:
                    collection = changed.partition("/")[0]
                    for target, _ in references(collection, resource):
                        self._added_refs.setdefault(target, set()).add(changed)
        kept = {ref for ref in indexed if ref not in self._changes}
        return frozenset(kept | self._added_refs.get(key, set()))


def is_named_list(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    """Whether a value is a list of items that each carry a string ``api_name``."""
    return isinstance(value, list) and all(
        isinstance(item, dict) and isinstance(item.get("api_name"), str) for item in value
    )


def by_name(items: Any) -> dict[str, dict[str, Any]]:
    """The items of a named list by api_name, skipping malformed ones.

    The first of a repeated name wins (checks refuse repeats).
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and isinstance(item.get("api_name"), str):
            out.setdefault(item["api_name"], item)
    return out


def type_name(data_type: Any) -> str:
    """A data type as people write it: ``string``, ``integer[]``."""
    if not isinstance(data_type, dict):
        return "none"
    base = str(data_type.get("base"))
    return f"{base}[]" if data_type.get("array") is True else base


@runtime_checkable
class Prefetching(Protocol):
    """A snapshot that loads resources lazily and can load many at once (the store's)."""

    def prefetch(self, keys: Iterable[str]) -> None:
        """Load these resources in bulk before they are read one by one."""


def prefetch(snapshot: Ontology, keys: Iterable[str]) -> None:
    """Ask a lazily loaded snapshot for many resources at once; a no-op for plain dicts."""
    if isinstance(snapshot, Prefetching):
        snapshot.prefetch(keys)


def collection_items(snapshot: Ontology, collection: str) -> Iterator[tuple[str, Resource]]:
    """Every ``(key, resource)`` of one collection in a snapshot."""
    prefix = collection + "/"
    keys = [key for key in snapshot if key.startswith(prefix)]
    prefetch(snapshot, keys)
    for key in keys:
        yield key, snapshot[key]
