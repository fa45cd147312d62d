"""Objects and links as plain data: their keys, their values' JSON forms, and their checks.

An object is an instance of an object type, a flat ``dict`` of property api_name -> value,
stored under ``objects/<ObjectType>/<pk>``; a link is ``{"from": pk, "to": pk}`` under
``links/<linkType>/<from>/<to>``. Primary keys in keys are percent-encoded, so a key splits
unambiguously whatever the values hold. They share the commits and the key space of the
schema, so history, diff and merge treat them as resources whose fields are properties.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote

from common.errors import FieldViolation, quoted
from common.outbox import OutboxEvent
from oms.model import (
    LINK_TYPES,
    OBJECT_TYPES,
    BaseType,
    Ontology,
    Resource,
    by_name,
    collection_items,
    prefetch,
    resource_key,
    type_name,
)

OBJECTS = "objects"
LINKS = "links"
DATA_COLLECTIONS = (OBJECTS, LINKS)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
JSON_FORMS = {
    BaseType.STRING: "a string",
    BaseType.TEXT: "a string",
    BaseType.INTEGER: "a whole number of 32 bits",
    BaseType.LONG: "a whole number of 64 bits",
    BaseType.DOUBLE: "a finite number",
    BaseType.DECIMAL: 'a decimal number as a string, e.g. "12.50"',
    BaseType.BOOLEAN: "true or false",
    BaseType.DATE: 'a date "YYYY-MM-DD"',
    BaseType.TIMESTAMP: 'an RFC 3339 timestamp with its offset, e.g. "2024-05-01T12:00:00Z"',
    BaseType.JSON: "any JSON value",
    BaseType.GEOPOINT: 'a point {"lat": -90..90, "lon": -180..180}',
}
"""The JSON form of each data type, as the API documents and violations quote it."""


def _pk_segment(pk: str) -> str:
    return quote(pk, safe="")


def object_key(object_type: str, pk: str) -> str:
    """The key of an object; the one place that spells it."""
    return f"{OBJECTS}/{object_type}/{_pk_segment(pk)}"


def link_key(link_type: str, from_pk: str, to_pk: str) -> str:
    """The key of a link; the one place that spells it."""
    return f"{LINKS}/{link_type}/{_pk_segment(from_pk)}/{_pk_segment(to_pk)}"


def is_data_key(key: str) -> bool:
    """Whether a key names an object or a link rather than a schema resource."""
    return key.partition("/")[0] in DATA_COLLECTIONS


def schema_part(changes: Mapping[str, Resource | None]) -> dict[str, Resource | None]:
    """The schema resources among a commit's changes (checks of the schema see only these)."""
    return {k: v for k, v in changes.items() if not is_data_key(k)}


def is_well_formed(key: str) -> bool:
    """Whether a data key has its parts: ``objects/<Type>/<pk>``, ``links/<type>/<from>/<to>``."""
    parts = key.split("/")
    size = {OBJECTS: 3, LINKS: 4}.get(parts[0])
    return len(parts) == size and all(parts)


def parse_object_key(key: str) -> tuple[str, str]:
    """``objects/Employee/e%2F1`` -> ``("Employee", "e/1")``."""
    _, object_type, pk = key.split("/", 2)
    return object_type, unquote(pk)


def parse_link_key(key: str) -> tuple[str, str, str]:
    """``links/worksFor/e1/d1`` -> ``("worksFor", "e1", "d1")``."""
    _, link_type, from_pk, to_pk = key.split("/", 3)
    return link_type, unquote(from_pk), unquote(to_pk)


def pk_text(value: Any) -> str:
    """A primary key value as it appears in keys and paths: a string, or decimal digits."""
    return value if isinstance(value, str) else str(value)


@runtime_checkable
class DataView(Protocol):
    """What checks need to read of the data of a snapshot without reading all of it."""

    def object_keys(self, object_type: str) -> list[str]:
        """The primary keys of the objects of one type, sorted."""
        ...

    def linked(self, link_type: str, pk: str, *, reverse: bool) -> list[str]:
        """The primary keys linked to ``pk`` (a ``from`` end; a ``to`` end when ``reverse``)."""
        ...

    def objects(self, object_type: str, pks: Iterable[str]) -> Iterator[tuple[str, Resource]]:
        """The objects with these primary keys that exist, in that order, read in bulk."""
        ...


# -- values ---------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar(base: str, value: Any) -> tuple[bool, Any]:
    """Whether ``value`` is in the JSON form of ``base``, and the value as stored."""
    if base in (BaseType.STRING, BaseType.TEXT):
        return isinstance(value, str), value
    if base == BaseType.INTEGER:
        return _is_int(value) and INT32[0] <= value <= INT32[1], value
    if base == BaseType.LONG:
        return _is_int(value) and INT64[0] <= value <= INT64[1], value
    if base == BaseType.DOUBLE:
        number = _is_int(value) or isinstance(value, float)
        return number and math.isfinite(value), value
    if base == BaseType.DECIMAL:
        return isinstance(value, str) and DECIMAL.fullmatch(value) is not None, value
    if base == BaseType.BOOLEAN:
        return isinstance(value, bool), value
    if base == BaseType.DATE:
        if not isinstance(value, str) or not DATE.fullmatch(value):
            return False, value
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False, value
        return True, value
    if base == BaseType.TIMESTAMP:
        return _timestamp(value)
    if base == BaseType.GEOPOINT:
        ok = (
            isinstance(value, dict)
            and set(value) == {"lat", "lon"}
            and all(_is_int(v) or isinstance(v, float) for v in value.values())
            and -90 <= value["lat"] <= 90
            and -180 <= value["lon"] <= 180
        )
        return ok, value
    return base == BaseType.JSON, value


def _timestamp(value: Any) -> tuple[bool, Any]:
    """RFC 3339 with an offset; stored in UTC with ``Z`` so that equal moments compare equal."""
    if not isinstance(value, str) or not TIMESTAMP.fullmatch(value):
        return False, value
    text, fraction = value, ""
    match = re.search(r"\.([0-9]+)", value)
    if match:
        fraction = match.group(1).rstrip("0")
        text = value[: match.start()] + value[match.end() :]
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False, value
    utc = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return True, f"{utc}.{fraction}Z" if fraction else f"{utc}Z"


@dataclass(frozen=True, slots=True)
class _ValueRule:
    """A property's data type and enum, read once from its definition."""

    data_type: Mapping[str, Any]
    base: str
    array: bool
    allowed: Sequence[Any]

    @staticmethod
    def of(prop: Mapping[str, Any]) -> _ValueRule:
        data_type = prop.get("data_type") or {}
        return _ValueRule(
            data_type,
            str(data_type.get("base", "")),
            data_type.get("array") is True,
            prop.get("enum_values") or [],
        )


def check_value(path: str, prop: Mapping[str, Any], value: Any) -> tuple[list[FieldViolation], Any]:
    """The violations of one property value (never ``None`` here) and the value as stored."""
    return _check_value(path, _ValueRule.of(prop), value)


def _check_value(path: str, rule: _ValueRule, value: Any) -> tuple[list[FieldViolation], Any]:
    if not rule.array:
        ok, kept = _scalar(rule.base, value)
        if not ok:
            return [_type_violation(path, rule.data_type)], value
        if rule.allowed and kept not in rule.allowed:
            return [_enum_violation(path, kept, rule.allowed)], value
        return [], kept
    if not isinstance(value, list):
        return [_type_violation(path, rule.data_type)], value
    stored: list[Any] = []
    for item in value:
        ok, kept = _scalar(rule.base, item)
        if not ok:
            return [_type_violation(path, rule.data_type)], value
        stored.append(kept)
    outside = [v for v in stored if v not in rule.allowed] if rule.allowed else []
    if outside:
        return [_enum_violation(path, outside[0], rule.allowed)], value
    return [], stored


def _enum_violation(path: str, value: Any, allowed: Sequence[Any]) -> FieldViolation:
    return FieldViolation(
        path, f"{quoted(value)} is not one of {quoted(list(allowed))}", "ENUM_VALUE"
    )


def _type_violation(path: str, data_type: Mapping[str, Any]) -> FieldViolation:
    base = str(data_type.get("base", ""))
    form = JSON_FORMS.get(BaseType(base), base) if base in BaseType.__members__.values() else base
    if data_type.get("array") is True:
        form = f"a list, each {form}"
    return FieldViolation(path, f"must be {form} ({type_name(data_type)})", "INVALID_TYPE")


MAX_PRIMARY_KEY = 1024
"""Characters of a string primary key. It is a segment of the object's REST path, so an empty
one could never be read, changed or deleted there, and a long one would outgrow the gateway's
header limit once percent-encoded."""


class TypeRules:
    """What an object type asks of its objects, read from its definition once.

    A batch checks many objects of a few types; reading the properties by name per object
    cost as much as checking its values.
    """

    def __init__(self, object_type: Resource) -> None:
        self._type_name = object_type.get("api_name")
        props = by_name(object_type.get("properties"))
        self._rules = {name: _ValueRule.of(prop) for name, prop in props.items()}
        required = {n for n, p in props.items() if p.get("required") is True}
        self.primary_key = str(object_type.get("primary_key", ""))
        required.add(self.primary_key)
        self._required = sorted(required & props.keys())

    def check(
        self, values: Mapping[str, Any], *, path: str
    ) -> tuple[list[FieldViolation], dict[str, Any]]:
        """See :func:`check_object`."""
        rules = self._rules
        out: list[FieldViolation] = []
        stored: dict[str, Any] = {}
        for name in sorted(values):
            value = values[name]
            rule = rules.get(name)
            if rule is None:
                out.append(
                    FieldViolation(
                        f"{path}.{name}",
                        f"{self._type_name} has no property {quoted(name)}",
                        "UNKNOWN_PROPERTY",
                    )
                )
                stored[name] = value
            elif value is not None:
                found, kept = _check_value(f"{path}.{name}", rule, value)
                out.extend(found)
                stored[name] = kept
        for name in self._required:
            if values.get(name) is None:
                out.append(FieldViolation(f"{path}.{name}", "required", "REQUIRED"))
        pk = stored.get(self.primary_key)
        if isinstance(pk, str) and not 0 < len(pk) <= MAX_PRIMARY_KEY:
            out.append(
                FieldViolation(
                    f"{path}.{self.primary_key}",
                    f"a primary key must be 1 to {MAX_PRIMARY_KEY} characters",
                    "TOO_LONG" if pk else "REQUIRED",
                )
            )
        elif isinstance(pk, str) and "\x00" in pk:  # no request could name it again
            out.append(
                FieldViolation(
                    f"{path}.{self.primary_key}",
                    "a primary key must not contain the character U+0000",
                    "INVALID_CHARACTERS",
                )
            )
        return out, stored


def check_object(
    object_type: Resource, values: Mapping[str, Any], *, path: str
) -> tuple[list[FieldViolation], dict[str, Any]]:
    """Every problem of one object's values against its type, and the object as stored.

    Unknown properties, missing required ones (the primary key is always required), values
    outside their type's JSON form and outside the enum; ``None`` means absent and is dropped.
    Values in error are kept as given, so that checking the stored form finds them again.
    """
    return TypeRules(object_type).check(values, path=path)


def single_to(cardinality: str) -> bool:
    """Whether a ``from`` object may link to at most one ``to`` object (``*_TO_ONE``)."""
    return cardinality.endswith("_TO_ONE")


def single_from(cardinality: str) -> bool:
    """Whether a ``to`` object may be linked from at most one ``from`` object (``ONE_TO_*``)."""
    return cardinality.startswith("ONE_TO_")


# -- checks of a change ---------------------------------------------------------------------


def check_data(
    after: Ontology,
    changes: Mapping[str, Resource | None],
    before: DataView,
    *,
    where: Mapping[str, str],
    values_checked: Collection[str] = frozenset(),
) -> list[FieldViolation]:
    """Every violation of the data ``changes`` make, against the schema of ``after``.

    ``after`` is the snapshot with the changes applied, ``before`` the data they apply to;
    ``where`` names the request field each changed key came from (violation paths start
    there). ``values_checked`` are object keys whose values the caller has checked against
    their type in ``after`` already, with their key taken from those values.

    Checks what a write can break: each written object against its type (and the
    uniqueness of its unique properties across the type), each written link's type,
    endpoints and cardinality on both ends, and each deleted object's links (which must be
    deleted too).
    """
    out: list[FieldViolation] = []
    data = {k: v for k, v in changes.items() if k.partition("/")[0] in DATA_COLLECTIONS}
    links_of = _LinkChanges(data, before)
    for key in sorted(data):
        path = where.get(key, key)
        kind = key.partition("/")[0]
        value = data[key]
        if kind == OBJECTS:
            object_type, pk = parse_object_key(key)
            if value is None:
                out.extend(_dangling_links(after, object_type, pk, links_of, path))
            elif key not in values_checked:
                out.extend(_check_written_object(after, key, value, path))
        elif value is not None:
            out.extend(_check_written_link(after, key, links_of, path))
    out.extend(_check_unique(after, data, before, where))
    return out


def _check_written_object(
    after: Ontology, key: str, value: Resource, path: str
) -> list[FieldViolation]:
    object_type, pk = parse_object_key(key)
    definition = after.get(resource_key(OBJECT_TYPES, object_type))
    if definition is None:
        return [
            FieldViolation(
                path, f"no object type {quoted(object_type)} on this branch", "UNKNOWN_TYPE"
            )
        ]
    found, _ = check_object(definition, value, path=f"{path}.properties")
    pk_name = str(definition.get("primary_key", ""))
    if pk_name in value and pk_text(value[pk_name]) != pk:
        found.append(
            FieldViolation(
                f"{path}.properties.{pk_name}",
                f"the primary key cannot change (it is {quoted(pk)})",
                "PRIMARY_KEY_IMMUTABLE",
            )
        )
    return found


class _LinkChanges:
    """The links of each end after a change: the stored ones, less deleted, plus created."""

    def __init__(self, data: Mapping[str, Resource | None], before: DataView) -> None:
        self._before = before
        self._delta: dict[tuple[str, str, bool], dict[str, bool]] = {}
        for key, value in data.items():
            if key.startswith(LINKS + "/"):
                link_type, from_pk, to_pk = parse_link_key(key)
                present = value is not None
                self._delta.setdefault((link_type, from_pk, False), {})[to_pk] = present
                self._delta.setdefault((link_type, to_pk, True), {})[from_pk] = present

    def linked(self, link_type: str, pk: str, *, reverse: bool) -> set[str]:
        found = set(self._before.linked(link_type, pk, reverse=reverse))
        for other, present in self._delta.get((link_type, pk, reverse), {}).items():
            if present:
                found.add(other)
            else:
                found.discard(other)
        return found


def _check_written_link(
    after: Ontology, key: str, links: _LinkChanges, path: str
) -> list[FieldViolation]:
    link_type, from_pk, to_pk = parse_link_key(key)
    definition = after.get(resource_key(LINK_TYPES, link_type))
    if definition is None:
        return [
            FieldViolation(path, f"no link type {quoted(link_type)} on this branch", "UNKNOWN_TYPE")
        ]
    out: list[FieldViolation] = []
    ends = (
        ("from_primary_key", str(definition["from_object_type"]), from_pk),
        ("to_primary_key", str(definition["to_object_type"]), to_pk),
    )
    for field, object_type, pk in ends:
        if object_key(object_type, pk) not in after:
            out.append(
                FieldViolation(
                    f"{path}.{field}",
                    f"no {object_type} object with primary key {quoted(pk)}",
                    "OBJECT_NOT_FOUND",
                )
            )
    cardinality = str(definition.get("cardinality", ""))
    if single_to(cardinality) and len(links.linked(link_type, from_pk, reverse=False)) > 1:
        out.append(
            FieldViolation(
                f"{path}.from_primary_key",
                f"{cardinality}: {quoted(from_pk)} may link to one {ends[1][1]} only",
                "CARDINALITY",
            )
        )
    if single_from(cardinality) and len(links.linked(link_type, to_pk, reverse=True)) > 1:
        out.append(
            FieldViolation(
                f"{path}.to_primary_key",
                f"{cardinality}: {quoted(to_pk)} may be linked from one {ends[0][1]} only",
                "CARDINALITY",
            )
        )
    return out


def link_types_of(after: Ontology, object_type: str) -> list[tuple[str, bool]]:
    """``(link type, reverse)`` for every link type with ``object_type`` at an end.

    ``reverse`` is for the ``to`` end; a link type from a type to itself appears twice.
    """
    out: list[tuple[str, bool]] = []
    for _, link_type in collection_items(after, LINK_TYPES):
        name = str(link_type["api_name"])
        if link_type.get("from_object_type") == object_type:
            out.append((name, False))
        if link_type.get("to_object_type") == object_type:
            out.append((name, True))
    return out


def links_of_object(after: Ontology, object_type: str, pk: str, view: DataView) -> list[str]:
    """The keys of every stored link with the object at one end."""
    keys: list[str] = []
    for link_type, reverse in link_types_of(after, object_type):
        for other in view.linked(link_type, pk, reverse=reverse):
            keys.append(
                link_key(link_type, other, pk) if reverse else link_key(link_type, pk, other)
            )
    return sorted(set(keys))


def _dangling_links(
    after: Ontology, object_type: str, pk: str, links: _LinkChanges, path: str
) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    for link_type, reverse in link_types_of(after, object_type):
        remaining = sorted(links.linked(link_type, pk, reverse=reverse))
        if remaining:
            out.append(
                FieldViolation(
                    path,
                    f"{object_type} {quoted(pk)} is still linked by {link_type} to "
                    f"{quoted(remaining)}; delete its links too",
                    "OBJECT_LINKED",
                )
            )
    return out


def _check_unique(
    after: Ontology,
    data: Mapping[str, Resource | None],
    before: DataView,
    where: Mapping[str, str],
) -> list[FieldViolation]:
    """Unique properties stay unique across their type.

    Each written value is compared with every other object of the type after the change:
    one scan per type with unique properties that the change writes to.
    """
    written: dict[str, dict[str, Resource]] = {}
    for key, value in data.items():
        if key.startswith(OBJECTS + "/") and value is not None:
            object_type, pk = parse_object_key(key)
            written.setdefault(object_type, {})[pk] = value
    out: list[FieldViolation] = []
    for object_type, objects in sorted(written.items()):
        definition = after.get(resource_key(OBJECT_TYPES, object_type))
        if definition is None:
            continue
        unique = [
            str(p["api_name"])
            for p in by_name(definition.get("properties")).values()
            if p.get("unique") is True and p["api_name"] != definition.get("primary_key")
        ]
        if not unique:
            continue
        holders = _value_holders(after, object_type, unique, before.object_keys(object_type))
        for pk, value in sorted(objects.items()):
            for name in unique:
                if name not in value:
                    continue
                others = sorted(holders.get((name, _hashable(value[name])), set()) - {pk})
                if others:
                    path = where.get(object_key(object_type, pk), object_key(object_type, pk))
                    out.append(
                        FieldViolation(
                            f"{path}.properties.{name}",
                            f"{quoted(value[name])} is already the {name} of {object_type} "
                            f"{quoted(others[0])} (unique)",
                            "UNIQUE",
                        )
                    )
    return out


def _value_holders(
    after: Ontology, object_type: str, names: Sequence[str], stored: Iterable[str]
) -> dict[tuple[str, Any], set[str]]:
    """(property, value) -> primary keys holding it, over every object of the type after."""
    keys = [object_key(object_type, pk) for pk in stored]
    prefetch(after, keys)
    holders: dict[tuple[str, Any], set[str]] = {}
    for key in keys:
        value = after.get(key)
        if value is None:
            continue
        pk = parse_object_key(key)[1]
        for name in names:
            if name in value:
                holders.setdefault((name, _hashable(value[name])), set()).add(pk)
    return holders


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


# -- filters and order ----------------------------------------------------------------------

_CONDITION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|=|<|>|\bin\b)\s*", re.I)
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in")


@dataclass(frozen=True)
class Condition:
    """One term of a filter: ``property op value`` (``in``: value is a list)."""

    name: str
    op: str
    value: Any


def sort_value(prop: Mapping[str, Any], value: Any) -> Any:
    """A value as it compares: decimals by number, the others as stored.

    Dates and UTC timestamps compare as text, which orders them in time.
    """
    base = (prop.get("data_type") or {}).get("base")
    if isinstance(value, list):  # an array's elements, each as it compares
        return [sort_value(prop, item) for item in value]
    if base == BaseType.DECIMAL and isinstance(value, str):
        return Decimal(value)
    return value


MAX_FILTER_VALUES = 100
"""Most values one filter compares with: each condition's, and each of an ``in`` list's.

A filtered page may read every object of a type, each compared with all of them, so this
keeps a page's cost to its reads rather than to the length of its URL."""


def parse_filter(text: str, object_type: Resource) -> tuple[list[Condition], list[FieldViolation]]:
    """``age >= 30 AND dept in ["a", "b"]`` -> conditions; values are JSON in the type's form."""
    props = by_name(object_type.get("properties"))
    conditions: list[Condition] = []
    out: list[FieldViolation] = []
    terms = re.split(r"\s+AND\s+", text.strip()) if text.strip() else []
    if len(terms) > MAX_FILTER_VALUES:
        return [], [_too_many_values(len(terms))]
    for term in terms:
        match = _CONDITION.match(term)
        if match is None:
            out.append(
                FieldViolation("filter", f"not a condition: {quoted(term)}", "INVALID_FILTER")
            )
            continue
        name, op = match.group(1), match.group(2).lower()
        literal = term[match.end() :]
        try:
            value = json.loads(literal)
        except ValueError:
            out.append(
                FieldViolation("filter", f"not a JSON value: {quoted(literal)}", "INVALID_FILTER")
            )
            continue
        if name not in props:
            out.append(FieldViolation("filter", f"no property {quoted(name)}", "UNKNOWN_PROPERTY"))
            continue
        prop = props[name]
        scalar = {**prop, "enum_values": [], "data_type": {**prop["data_type"], "array": False}}
        items = value if op == "in" else [value]
        if op == "in" and not isinstance(value, list):
            out.append(FieldViolation("filter", f"{name} in takes a JSON list", "INVALID_FILTER"))
            continue
        ordered = op in ("<", "<=", ">", ">=")
        if ordered and prop["data_type"].get("base") in (
            BaseType.BOOLEAN,
            BaseType.JSON,
            BaseType.GEOPOINT,
        ):
            out.append(
                FieldViolation(
                    "filter",
                    f"{name} has no order ({type_name(prop['data_type'])})",
                    "INVALID_FILTER",
                )
            )
            continue
        kept: list[Any] = []
        for item in items:
            found, stored = check_value("filter", scalar, item) if item is not None else ([], None)
            out.extend(found)
            kept.append(sort_value(prop, stored))
        conditions.append(Condition(name, op, kept if op == "in" else kept[0]))
    values = sum(len(c.value) if c.op == "in" else 1 for c in conditions)
    if values > MAX_FILTER_VALUES:
        return [], [*out, _too_many_values(values)]
    return conditions, out


def _too_many_values(count: int) -> FieldViolation:
    return FieldViolation(
        "filter", f"compares with {count} values; at most {MAX_FILTER_VALUES}", "TOO_MANY"
    )


def compare(op: str, have: Any, want: Any) -> bool:
    """``have <op> want`` as filters and criteria mean it.

    An absent value only equals null and is never ordered; values of different kinds never
    order either.
    """
    if op == "=":
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    if op == "in":
        return isinstance(want, list) and have in want
    if op == "set":
        return have is not None
    if have is None or want is None:
        return False
    try:
        return bool(
            {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op]
        )
    except TypeError:
        return False


def matches(
    props: Mapping[str, dict[str, Any]], value: Mapping[str, Any], conditions: Sequence[Condition]
) -> bool:
    """Whether an object passes every condition.

    On an array property a condition on a value holds when one of its elements does, and
    ``!=`` when none equals it (as ``=`` and ``!=`` are each other's opposite); ``= null``
    still means the property is absent.
    """
    for c in conditions:
        prop = props[c.name]
        have = value.get(c.name)
        if have is None:
            held = compare(c.op, None, c.value)
        elif isinstance(have, list) and c.value is not None and _is_array(prop):
            items = sort_value(prop, have)
            if c.op == "!=":
                held = all(item != c.value for item in items)
            else:
                held = any(compare(c.op, item, c.value) for item in items)
        else:
            held = compare(c.op, sort_value(prop, have), c.value)
        if not held:
            return False
    return True


def _is_array(prop: Mapping[str, Any]) -> bool:
    return (prop.get("data_type") or {}).get("array") is True


MAX_ORDER_TERMS = 8
"""Most sort terms of one ``order_by``: each sorts every object the page keeps."""
_UNORDERED = (BaseType.JSON, BaseType.GEOPOINT)
"""Values without an order: a JSON value may be of any kind, and points are not ranked."""


def parse_order(
    text: str, object_type: Resource
) -> tuple[list[tuple[str, bool]], list[FieldViolation]]:
    """``"age desc, name"`` -> ``[("age", True), ("name", False)]`` (True: descending)."""
    props = by_name(object_type.get("properties"))
    order: list[tuple[str, bool]] = []
    out: list[FieldViolation] = []
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if len(parts) > MAX_ORDER_TERMS:
        return [], [
            FieldViolation(
                "order_by", f"{len(parts)} sort terms; at most {MAX_ORDER_TERMS}", "TOO_MANY"
            )
        ]
    for part in parts:
        words = part.split()
        name = words[0] if words else ""
        direction = words[1].lower() if len(words) == 2 else "asc"
        if len(words) not in (1, 2) or direction not in ("asc", "desc"):
            out.append(
                FieldViolation("order_by", f"not a sort term: {quoted(part)}", "INVALID_VALUE")
            )
        elif name not in props:
            out.append(
                FieldViolation("order_by", f"no property {quoted(name)}", "UNKNOWN_PROPERTY")
            )
        elif props[name]["data_type"].get("base") in _UNORDERED:
            out.append(
                FieldViolation(
                    "order_by",
                    f"{name} has no order ({type_name(props[name]['data_type'])})",
                    "INVALID_VALUE",
                )
            )
        else:
            order.append((name, direction == "desc"))
    return order, out


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataChange:
    """Where a data change lands: who, on which branch, in which commit (and any force)."""

    actor: str
    branch: str
    commit: str
    forcing: Mapping[str, Any]


def data_event(
    where: DataChange, key: str, before: Resource | None, after: Resource | None
) -> OutboxEvent:
    """``oms.object.created|updated|deleted`` or ``oms.link.created|deleted`` for one key.

    An object's event names the properties that changed (all of a created or deleted one).
    """
    kind = "deleted" if after is None else "updated" if before is not None else "created"
    data: dict[str, Any] = {"branch": where.branch, "commit": where.commit, **where.forcing}
    if key.startswith(OBJECTS + "/"):
        object_type, pk = parse_object_key(key)
        old, new = before or {}, after or {}
        changed = sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))
        data |= {"object_type": object_type, "primary_key": pk, "fields": changed}
        event_type = f"oms.object.{kind}"
    else:
        link_type, from_pk, to_pk = parse_link_key(key)
        data |= {"link_type": link_type, "from": from_pk, "to": to_pk}
        event_type = f"oms.link.{kind}"
    return OutboxEvent(
        type=event_type, subject=f"branches/{where.branch}/{key}", actor=where.actor, data=data
    )


# -- schema changes that see the data -------------------------------------------------------

EXAMPLES = 5
"""Primary keys a report of affected objects names."""


@dataclass(frozen=True)
class Affected:
    """The stored objects of one type a schema change makes invalid, for one kind of problem."""

    resource: str
    """The object type's key, ``object-types/<Type>``."""
    reason: str
    """REQUIRED, INVALID_TYPE, ENUM_VALUE, UNIQUE, UNKNOWN_PROPERTY or TYPE_IN_USE."""
    count: int
    examples: tuple[str, ...]
    """Up to :data:`EXAMPLES` primary keys, sorted."""
    detail: str
    """The first problem found, e.g. ``properties.level: required``."""

    def violation(self) -> FieldViolation:
        name = self.resource.partition("/")[2]
        return FieldViolation(
            self.resource,
            f"{self.count} {name} object(s) would violate it, e.g. {quoted(list(self.examples))}"
            f" ({self.detail})",
            self.reason,
        )


def schema_data_violations(
    after: Ontology,
    changes: Mapping[str, Resource | None],
    before: Ontology,
    data: DataView,
) -> dict[str, list[Affected]]:
    """For each changed object type, the stored objects its new definition would make invalid.

    Only object types whose ``properties`` or ``primary_key`` change (or that are deleted
    while they have objects) are read, each object once; objects the same change writes are
    checked as writes instead. Each violation counts the affected objects and names a few.
    """
    out: dict[str, list[Affected]] = {}
    for key in sorted(changes):
        collection, _, name = key.partition("/")
        if collection != OBJECT_TYPES:
            continue
        old, new = before.get(key), after.get(key)
        if (
            old is not None
            and new is not None
            and all(old.get(f) == new.get(f) for f in ("properties", "primary_key"))
        ):
            continue
        pks = [pk for pk in data.object_keys(name) if object_key(name, pk) not in changes]
        if not pks:
            continue
        if new is None:
            detail = "the object type is deleted"
            out[key] = [Affected(key, "TYPE_IN_USE", len(pks), tuple(pks[:EXAMPLES]), detail)]
            continue
        found = _affected(after, name, old, new, pks, data.objects(name, pks))
        if found:
            out[key] = found
    return out


def _affected(
    after: Ontology,
    name: str,
    old: Resource | None,
    new: Resource,
    pks: Sequence[str],
    stored: Iterable[tuple[str, Resource]],
) -> list[Affected]:
    """One violation per kind of problem: how many objects have it and a few of them.

    Only the properties whose definition changed are checked (a stored object was valid under
    the old one), so a change of one property costs one value check per object.
    """
    before = by_name((old or {}).get("properties"))
    props = by_name(new.get("properties"))
    changed = {n: p for n, p in props.items() if before.get(n) != p}
    if (old or {}).get("primary_key") != new.get("primary_key"):
        pk_name = str(new.get("primary_key"))
        changed[pk_name] = {**props.get(pk_name, {}), "required": True}
    rules = {
        n: (f"properties.{n}", p.get("required") is True, _ValueRule.of(p))
        for n, p in changed.items()
    }
    removed = before.keys() - props.keys()
    by_reason: dict[str, list[str]] = {}
    first: dict[str, str] = {}

    def blame(pk: str, violation: FieldViolation) -> None:
        holders = by_reason.setdefault(violation.reason, [])
        if not holders or holders[-1] != pk:
            holders.append(pk)
        first.setdefault(violation.reason, f"{violation.field}: {violation.description}")

    for pk, value in stored:
        for prop_name, (path, required, rule) in rules.items():
            if value.get(prop_name) is None:
                if required:
                    blame(pk, FieldViolation(path, "required", "REQUIRED"))
            else:
                for found in _check_value(path, rule, value[prop_name])[0]:
                    blame(pk, found)
        for prop_name in removed & value.keys():
            blame(
                pk,
                FieldViolation(
                    f"properties.{prop_name}", "the property was removed", "UNKNOWN_PROPERTY"
                ),
            )
    unique = [
        n for n, p in changed.items() if p.get("unique") is True and n != new.get("primary_key")
    ]
    if unique:
        for (prop_name, held), sharing in sorted(
            _value_holders(after, name, unique, pks).items(), key=lambda item: str(item[0])
        ):
            if len(sharing) > 1:
                by_reason.setdefault("UNIQUE", []).extend(sorted(sharing))
                first.setdefault("UNIQUE", f"properties.{prop_name}: {quoted(held)} is held twice")
    return [
        Affected(
            resource_key(OBJECT_TYPES, name),
            reason,
            len(holders),
            tuple(sorted(holders)[:EXAMPLES]),
            first[reason],
        )
        for reason, holders in sorted(by_reason.items())
    ]
