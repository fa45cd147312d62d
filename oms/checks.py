"""Write-time checks: every problem of a definition against the ontology it would join.

Each check returns all the violations it finds (never just the first), with field paths such
as ``object_type.properties[2].api_name``; the caller raises ``common.errors.invalid``. A
definition is checked whole: its own fields, the references it makes, and the resources that
reference it (an interface gaining a property must still be satisfied by its implementers).
Who refers to a resource comes from the snapshot's reverse-reference index when it keeps one
(the store's does, per commit), so checking a few resources reads only them and their
referrers, however large the ontology is; other snapshots are scanned once per call, and only
the collections a change can affect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from typing import Any, TypeGuard

from common.canonical import nested_deeper
from common.errors import FieldViolation, quoted
from oms.model import (
    ACTION_TYPES,
    CRITERION_FIELDS,
    FIELDS,
    INTERFACES,
    LINK_TYPES,
    OBJECT_TYPES,
    PARAMETER_FIELDS,
    PASCAL_CASE_KINDS,
    PROPERTY_FIELDS,
    RULE_FIELDS,
    SHARED_PROPERTIES,
    SINGULAR,
    SPARSE_FLAGS,
    BaseType,
    Cardinality,
    Ontology,
    Overlay,
    Resource,
    RuleKind,
    Status,
    by_name,
    collection_items,
    normalize,
    prefetch,
    references,
    referrers,
    resource_key,
    split_key,
    type_name,
)

PASCAL_CASE = re.compile(r"[A-Z][A-Za-z0-9]*")
CAMEL_CASE = re.compile(r"[a-z][A-Za-z0-9]*")
CRITERION_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "set")
"""How a submission criterion compares; ``set``: the value is present."""
PERMISSION = re.compile(r"[a-z][a-z0-9_-]*:[a-z][a-z0-9_*-]*")
MAX_NAME = 100
MAX_DISPLAY_NAME = 256
MAX_DESCRIPTION = 4096
MAX_ENUM_VALUE = 256
MAX_MESSAGE = 20_000
"""Characters of a commit's or a tag's message, and of the reason given for a force."""
MAX_RESOURCE_BYTES = 1024 * 1024
"""Bytes of one written resource (a definition, an object, a link) as canonical JSON. Every
read answers a resource whole, and the gateway's transcoder buffers an answer whole up to
16 MiB; JSON can spell a value several times longer than its protobuf form, so a resource
is kept well inside that."""
MAX_NESTING = 20
"""Levels of objects and lists in one written resource (itself the first; an object's
properties are the first level) and in an action's parameters. Protobuf decoders stop at 100
levels of messages and each JSON level costs two or three, so a value nested much deeper
could be stored and then never answered inside a larger message (an action's edits, an
event); other document stores draw the line at 20 too."""
BASE_TYPES = frozenset(t.value for t in BaseType)
STATUSES = frozenset(s.value for s in Status)
CARDINALITIES = frozenset(c.value for c in Cardinality)
RULE_KINDS = frozenset(k.value for k in RuleKind)
PRIMARY_KEY_TYPES = frozenset({BaseType.STRING, BaseType.INTEGER, BaseType.LONG})
ENUM_TYPES = frozenset({BaseType.STRING, BaseType.TEXT})
OBJECT_RULES = frozenset({RuleKind.CREATE_OBJECT, RuleKind.MODIFY_OBJECT, RuleKind.DELETE_OBJECT})
LINK_RULES = frozenset({RuleKind.CREATE_LINK, RuleKind.DELETE_LINK})
LINK_RULE_VALUES = ("from", "to")
_KNOWN = {collection: frozenset(fields) for collection, fields in FIELDS.items()}

REFERRERS: Mapping[str, tuple[str, ...]] = {
    OBJECT_TYPES: (LINK_TYPES, ACTION_TYPES),
    INTERFACES: (OBJECT_TYPES, INTERFACES),
    SHARED_PROPERTIES: (OBJECT_TYPES, INTERFACES),
    LINK_TYPES: (ACTION_TYPES,),
    ACTION_TYPES: (),
}
"""Which collections may hold references to a resource of each collection."""

RELIED_ON: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    OBJECT_TYPES: (("properties", "primary_key"), (ACTION_TYPES,)),
    INTERFACES: (("properties", "extends"), (OBJECT_TYPES, INTERFACES)),
    SHARED_PROPERTIES: (("data_type", "enum_values"), (OBJECT_TYPES, INTERFACES)),
    LINK_TYPES: (("from_object_type", "to_object_type"), (ACTION_TYPES,)),
    ACTION_TYPES: ((), ()),
}
"""For each collection, the fields other resources rely on beyond its existence, and the
collections that rely on them: a change to any other field cannot break a referrer."""


def check_resource(
    collection: str, resource: Mapping[str, Any], snapshot: Ontology
) -> list[FieldViolation]:
    """Every violation of writing ``resource`` (created or replaced) into ``snapshot``.

    When the write changes a field that others rely on, the resources referencing this one
    are checked again against the new definition; problems they already had before are not
    blamed on this write. Other writes read only what the resource itself references.
    """
    checker = _Checker(snapshot)
    new = normalize(collection, resource)
    violations = checker.own(collection, new)
    name = new["api_name"]
    if not isinstance(name, str) or not _is_name(collection, name):
        return violations
    key = resource_key(collection, name)
    old = snapshot.get(key)
    fields, within = RELIED_ON[collection]
    if old is None or all(old.get(f) == new.get(f) for f in fields):
        return violations
    after = _Checker(Overlay(snapshot, {key: new}))
    before_by_key: dict[str, list[FieldViolation]] = {}
    for ref_key in sorted(checker.dependents([key], within) - {key}):
        ref_collection, _ = split_key(ref_key)
        found = after.own(ref_collection, after.snapshot[ref_key])
        if not found:
            continue
        before = before_by_key.setdefault(ref_key, checker.own(ref_collection, snapshot[ref_key]))
        violations.extend(
            FieldViolation(
                SINGULAR[collection],
                f"breaks {ref_key}: {v.field}: {v.description}",
                "BREAKS_DEPENDENT",
            )
            for v in found
            if v not in before
        )
    return violations


def check_delete(collection: str, api_name: str, snapshot: Ontology) -> list[FieldViolation]:
    """Every reason ``collection/api_name`` cannot be deleted: the resources still using it."""
    key = resource_key(collection, api_name)
    refs = _Checker(snapshot).referrers([key])
    return [
        FieldViolation("name", f"{key} is still referenced by {ref} ({path})", "RESOURCE_IN_USE")
        for ref, paths in sorted(refs.items())
        if ref != key
        for path in paths
    ]


def check_changes(
    snapshot: Ontology, keys: Iterable[str], *, before: Ontology | None = None
) -> dict[str, list[FieldViolation]]:
    """Violations of a snapshot after many resources changed (e.g. a merge), by resource key.

    ``snapshot`` is the ontology after the change and ``keys`` the resources that changed
    (present: written, absent: deleted). The changed resources and every resource referencing
    one of them are checked; nothing else is read. The changed resources are checked whole,
    as a single write is; with ``before`` (the ontology the change applies to), a referrer's
    violations that it already had there are not blamed on the change.
    """
    checker = _Checker(snapshot)
    keys = set(keys)
    to_check = sorted({k for k in keys if k in snapshot} | checker.dependents(keys))
    prefetch(snapshot, to_check)
    earlier = None if before is None else _Checker(before)
    result: dict[str, list[FieldViolation]] = {}
    for key in to_check:
        collection, _ = split_key(key)
        found = checker.own(collection, snapshot[key])
        if found and earlier is not None and key not in keys and key in earlier.snapshot:
            known = earlier.own(collection, earlier.snapshot[key])
            found = [v for v in found if v not in known]
        if found:
            result[key] = found
    return result


def _is_name(collection: str, name: str) -> bool:
    pattern = PASCAL_CASE if collection in PASCAL_CASE_KINDS else CAMEL_CASE
    return len(name) <= MAX_NAME and pattern.fullmatch(name) is not None


class _Checker:
    """Checks against one snapshot, with a reverse-reference index built on first need."""

    def __init__(self, snapshot: Ontology) -> None:
        self.snapshot = snapshot
        self._reverse: dict[tuple[str, str], dict[str, dict[str, list[str]]]] = {}

    # -- reverse references -------------------------------------------------------------

    def referrers(
        self, keys: Iterable[str], within: Iterable[str] | None = None
    ) -> dict[str, list[str]]:
        """Resources (of the ``within`` collections, else any) referencing any of ``keys``.

        The result maps referrer key -> referencing field paths.
        """
        out: dict[str, list[str]] = {}
        for key in keys:
            collection, _ = split_key(key)
            allowed = [c for c in REFERRERS[collection] if within is None or c in within]
            indexed = referrers(self.snapshot, key) if allowed else frozenset()
            if indexed is None:
                for ref_collection in allowed:
                    index = self._reverse_index(collection, ref_collection)
                    for ref, paths in index.get(key, {}).items():
                        out.setdefault(ref, []).extend(paths)
                continue
            refs = sorted(ref for ref in indexed if ref.partition("/")[0] in allowed)
            prefetch(self.snapshot, refs)
            for ref in refs:
                found = references(ref.partition("/")[0], self.snapshot[ref])
                out.setdefault(ref, []).extend(path for target, path in found if target == key)
        return out

    def _reverse_index(self, target: str, source: str) -> dict[str, dict[str, list[str]]]:
        """References from collection ``source`` into collection ``target``, read once.

        The fallback for snapshots that keep no reverse-reference index (plain dicts).
        """
        index = self._reverse.get((target, source))
        if index is None:
            index = {}
            for ref_key, resource in collection_items(self.snapshot, source):
                for key, path in references(source, resource):
                    if key.startswith(target + "/"):
                        index.setdefault(key, {}).setdefault(ref_key, []).append(path)
            self._reverse[(target, source)] = index
        return index

    def dependents(self, keys: Iterable[str], within: Iterable[str] | None = None) -> set[str]:
        """Resources whose validity may change with ``keys``.

        These are their referrers and, through interface inheritance, the referrers of those in turn
        (an implementer of a sub-interface included).
        """
        found: set[str] = set()
        frontier = list(keys)
        while frontier:
            refs = set(self.referrers(frontier, within)) - found
            found |= refs
            frontier = [k for k in refs if k.startswith(INTERFACES + "/")]
        return found

    # -- one resource -------------------------------------------------------------------

    def own(self, collection: str, resource: Resource) -> list[FieldViolation]:
        """Violations of one normalized resource: its fields and the references it makes."""
        out = _Violations(SINGULAR[collection])
        _check_fields(out, "", resource, _KNOWN[collection])
        name = resource.get("api_name")
        _name(out, "api_name", name, collection in PASCAL_CASE_KINDS)
        _check_text(out, "display_name", resource.get("display_name"), MAX_DISPLAY_NAME, True)
        _check_text(out, "description", resource.get("description"), MAX_DESCRIPTION, False)
        if collection == OBJECT_TYPES:
            self._object_type(out, resource)
        elif collection == LINK_TYPES:
            self._link_type(out, resource)
        elif collection == ACTION_TYPES:
            self._action_type(out, resource)
        elif collection == INTERFACES:
            self._interface(out, resource)
        else:
            _check_data_type(out, "data_type", resource.get("data_type"))
            _check_enum(out, "enum_values", resource.get("enum_values"), resource.get("data_type"))
        return out.items

    def _object_type(self, out: _Violations, resource: Resource) -> None:
        name = resource.get("api_name")
        if isinstance(name, str) and resource_key(INTERFACES, name) in self.snapshot:
            out.add("api_name", f"{name} is already the name of an interface", "NAME_CONFLICT")
        if not _one_of(resource.get("status"), STATUSES):
            out.add("status", f"must be one of {', '.join(Status)}", "INVALID_VALUE")
        props = self._properties(out, resource.get("properties"))
        pk = _string(out, "primary_key", resource.get("primary_key"), required=True)
        if pk is not None and pk not in props:
            out.add("primary_key", f"no property named {quoted(pk)}", "UNRESOLVED_REFERENCE")
        elif pk is not None:
            dt = props[pk].get("data_type")
            if not _is_data_type(dt) or dt["array"] or dt["base"] not in PRIMARY_KEY_TYPES:
                out.add(
                    "primary_key",
                    (
                        f"property {quoted(pk)} must be a single "
                        f"{', '.join(sorted(PRIMARY_KEY_TYPES))}"
                    ),
                    "INVALID_PRIMARY_KEY",
                )
            if props[pk].get("required") is not True:
                out.add(
                    "primary_key", f"property {quoted(pk)} must be required", "INVALID_PRIMARY_KEY"
                )
        title = _string(out, "title_property", resource.get("title_property"), required=True)
        if title is not None and title not in props:
            out.add("title_property", f"no property named {quoted(title)}", "UNRESOLVED_REFERENCE")
        interfaces = resource.get("interfaces")
        for i, iface in self._name_list(out, "interfaces", interfaces, INTERFACES):
            for prop_name, (req, owner) in sorted(self._interface_properties(iface).items()):
                have = props.get(prop_name)
                where = f"interfaces[{i}]"
                if have is None:
                    out.add(
                        where,
                        f"interface {iface} needs property {quoted(prop_name)} (from {owner})",
                        "INTERFACE_NOT_SATISFIED",
                    )
                    continue
                if have.get("data_type") != req.get("data_type"):
                    out.add(
                        where,
                        f"property {quoted(prop_name)} must have the data type of {owner}"
                        f" ({type_name(req.get('data_type'))})",
                        "INTERFACE_NOT_SATISFIED",
                    )
                if req.get("required") is True and have.get("required") is not True:
                    out.add(
                        where,
                        f"property {quoted(prop_name)} must be required, as in {owner}",
                        "INTERFACE_NOT_SATISFIED",
                    )

    def _link_type(self, out: _Violations, resource: Resource) -> None:
        for end in ("from_object_type", "to_object_type"):
            self._reference(out, end, resource.get(end), OBJECT_TYPES, required=True)
        if not _one_of(resource.get("cardinality"), CARDINALITIES):
            out.add("cardinality", f"must be one of {', '.join(Cardinality)}", "INVALID_VALUE")

    def _interface(self, out: _Violations, resource: Resource) -> None:
        name = resource.get("api_name")
        if isinstance(name, str) and resource_key(OBJECT_TYPES, name) in self.snapshot:
            out.add("api_name", f"{name} is already the name of an object type", "NAME_CONFLICT")
        own = self._properties(out, resource.get("properties"))
        for i, parent in self._name_list(out, "extends", resource.get("extends"), INTERFACES):
            if parent == name:
                out.add(f"extends[{i}]", "an interface cannot extend itself", "INHERITANCE_CYCLE")
                continue
            cycle = self._cycle_through(parent, name)
            if cycle:
                out.add(
                    f"extends[{i}]",
                    f"inheritance cycle {' -> '.join([str(name), *cycle])}",
                    "INHERITANCE_CYCLE",
                )
                continue
            for prop_name, (inherited, owner) in self._interface_properties(parent).items():
                mine = own.get(prop_name)
                if mine is not None and mine.get("data_type") != inherited.get("data_type"):
                    out.add(
                        f"extends[{i}]",
                        f"property {quoted(prop_name)} has another data type in {owner}",
                        "TYPE_MISMATCH",
                    )

    def _action_type(self, out: _Violations, resource: Resource) -> None:
        permission = _string(out, "permission", resource.get("permission"), required=True)
        if permission is not None and PERMISSION.fullmatch(permission) is None:
            out.add("permission", "must look like resource:action", "INVALID_VALUE")
        params = self._parameters(out, resource.get("parameters"))
        self._criteria(out, resource.get("submission_criteria", []), params)
        rules = resource.get("rules")
        if not isinstance(rules, list):
            out.add("rules", "must be a list", "WRONG_TYPE")
            return
        if not rules:
            out.add("rules", "an action type needs at least one rule", "REQUIRED")
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                out.add(f"rules[{i}]", "must be an object", "WRONG_TYPE")
                continue
            self._rule(out, f"rules[{i}]", rule, params)

    def _criteria(self, out: _Violations, value: Any, params: Mapping[str, dict[str, Any]]) -> None:
        """Each criterion tests one thing: a parameter, its object's property, or the caller."""
        if not isinstance(value, list):
            out.add("submission_criteria", "must be a list", "WRONG_TYPE")
            return
        for i, criterion in enumerate(value):
            path = f"submission_criteria[{i}]"
            if not isinstance(criterion, dict):
                out.add(path, "must be an object", "WRONG_TYPE")
                continue
            for name in sorted(criterion.keys() - CRITERION_FIELDS):
                out.add(f"{path}.{name}", "unknown field", "UNKNOWN_FIELD")
            _string(out, f"{path}.message", criterion.get("message"), required=True)
            tests = [
                n for n in ("parameter", "caller_permission", "caller_role") if criterion.get(n)
            ]
            if len(tests) != 1:
                out.add(
                    path,
                    "set exactly one of parameter, caller_permission and caller_role",
                    "INVALID_VALUE",
                )
                continue
            permission = criterion.get("caller_permission")
            if permission and (
                not isinstance(permission, str) or PERMISSION.fullmatch(permission) is None
            ):
                out.add(
                    f"{path}.caller_permission", "must look like resource:action", "INVALID_VALUE"
                )
            if tests != ["parameter"]:
                continue
            self._criterion_test(out, path, criterion, params)

    def _criterion_test(
        self,
        out: _Violations,
        path: str,
        criterion: dict[str, Any],
        params: Mapping[str, dict[str, Any]],
    ) -> None:
        name, prop = criterion.get("parameter"), criterion.get("property")
        param = params.get(name) if isinstance(name, str) else None
        if param is None:
            out.add(f"{path}.parameter", f"no parameter {quoted(name)}", "UNRESOLVED_REFERENCE")
        elif prop:
            target = self.snapshot.get(resource_key(OBJECT_TYPES, str(param.get("object_type"))))
            if not param.get("object_type"):
                out.add(
                    f"{path}.property", "only an object parameter has properties", "INVALID_VALUE"
                )
            elif target is not None and prop not in by_name(target.get("properties")):
                out.add(
                    f"{path}.property",
                    f"{param['object_type']} has no property {quoted(prop)}",
                    "UNRESOLVED_REFERENCE",
                )
        if criterion.get("operator") not in CRITERION_OPERATORS:
            out.add(
                f"{path}.operator",
                f"must be one of {', '.join(CRITERION_OPERATORS)}",
                "INVALID_VALUE",
            )
        elif criterion["operator"] == "in" and not isinstance(criterion.get("value"), list):
            out.add(f"{path}.value", "operator in takes a list", "INVALID_VALUE")

    # -- parts --------------------------------------------------------------------------

    def _properties(self, out: _Violations, value: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(value, list):
            out.add("properties", "must be a list", "WRONG_TYPE")
            return {}
        seen: dict[str, str] = {}
        for i, prop in enumerate(value):
            path = f"properties[{i}]"
            if not isinstance(prop, dict):
                out.add(path, "must be an object", "WRONG_TYPE")
                continue
            _check_fields(out, path + ".", prop, PROPERTY_FIELDS)
            name = _name(out, path + ".api_name", prop.get("api_name"), pascal=False)
            _check_unique(out, path + ".api_name", name, seen, "property")
            _check_text(
                out, path + ".display_name", prop.get("display_name"), MAX_DISPLAY_NAME, True
            )
            _check_text(out, path + ".description", prop.get("description"), MAX_DESCRIPTION, False)
            _check_data_type(out, path + ".data_type", prop.get("data_type"))
            for flag in ("required", "unique", *(SPARSE_FLAGS & prop.keys())):
                if not isinstance(prop.get(flag), bool):
                    out.add(f"{path}.{flag}", "must be true or false", "WRONG_TYPE")
            _check_enum(out, path + ".enum_values", prop.get("enum_values"), prop.get("data_type"))
            shared = prop.get("shared_property")
            definition = self._reference(
                out, path + ".shared_property", shared, SHARED_PROPERTIES, required=False
            )
            if definition is not None:
                if definition.get("data_type") != prop.get("data_type"):
                    out.add(
                        path + ".data_type",
                        f"must equal the data type of shared property {shared}"
                        f" ({type_name(definition.get('data_type'))})",
                        "TYPE_MISMATCH",
                    )
                if definition.get("enum_values") != prop.get("enum_values"):
                    out.add(
                        path + ".enum_values",
                        f"must equal the enum values of shared property {shared}",
                        "TYPE_MISMATCH",
                    )
        return by_name(value)

    def _parameters(self, out: _Violations, value: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(value, list):
            out.add("parameters", "must be a list", "WRONG_TYPE")
            return {}
        seen: dict[str, str] = {}
        for i, param in enumerate(value):
            path = f"parameters[{i}]"
            if not isinstance(param, dict):
                out.add(path, "must be an object", "WRONG_TYPE")
                continue
            _check_fields(out, path + ".", param, PARAMETER_FIELDS)
            name = _name(out, path + ".api_name", param.get("api_name"), pascal=False)
            _check_unique(out, path + ".api_name", name, seen, "parameter")
            display = param.get("display_name")
            _check_text(out, path + ".display_name", display, MAX_DISPLAY_NAME, True)
            _check_text(
                out, path + ".description", param.get("description"), MAX_DESCRIPTION, False
            )
            if not isinstance(param.get("required"), bool):
                out.add(path + ".required", "must be true or false", "WRONG_TYPE")
            data_type, object_type = param.get("data_type"), param.get("object_type")
            if data_type is not None and object_type:
                out.add(path, "set data_type or object_type, not both", "INVALID_VALUE")
            elif data_type is not None:
                _check_data_type(out, path + ".data_type", data_type)
            elif object_type:
                self._reference(out, path + ".object_type", object_type, OBJECT_TYPES, True)
            else:
                out.add(path, "needs a data_type or an object_type", "REQUIRED")
        return by_name(value)

    def _rule(
        self, out: _Violations, path: str, rule: dict[str, Any], params: dict[str, dict[str, Any]]
    ) -> None:
        _check_fields(out, path + ".", rule, RULE_FIELDS)
        kind = rule.get("kind")
        if not _one_of(kind, RULE_KINDS):
            out.add(path + ".kind", f"must be one of {', '.join(RuleKind)}", "INVALID_VALUE")
            return
        values = rule.get("values")
        if not isinstance(values, dict):
            out.add(path + ".values", "must be a map of names to parameter names", "WRONG_TYPE")
            values = {}
        needs = {"object_type", "object_parameter"} if kind in OBJECT_RULES else {"link_type"}
        if kind == RuleKind.CREATE_OBJECT:
            needs = {"object_type"}
        for field in ("object_type", "link_type", "object_parameter"):
            if field not in needs and rule.get(field):
                out.add(f"{path}.{field}", f"must be empty for {kind}", "INVALID_VALUE")
        if kind in LINK_RULES:
            self._link_rule(out, path, rule.get("link_type"), values, params)
            return
        object_type = rule.get("object_type")
        target = self._reference(out, path + ".object_type", object_type, OBJECT_TYPES, True)
        if "object_parameter" in needs:
            ref = _string(
                out, path + ".object_parameter", rule.get("object_parameter"), required=True
            )
            if ref is not None:
                param = params.get(ref)
                if param is None:
                    out.add(
                        path + ".object_parameter",
                        f"no parameter {quoted(ref)}",
                        "UNRESOLVED_REFERENCE",
                    )
                elif param.get("object_type") != object_type:
                    out.add(
                        path + ".object_parameter",
                        f"parameter {quoted(ref)} must reference objects of type {object_type}",
                        "TYPE_MISMATCH",
                    )
        if kind == RuleKind.DELETE_OBJECT:
            if values:
                out.add(path + ".values", f"must be empty for {kind}", "INVALID_VALUE")
            return
        if not values:
            out.add(path + ".values", f"{kind} must set at least one property", "REQUIRED")
        if target is None:
            return
        props = by_name(target.get("properties"))
        for prop_name, param_name in sorted(values.items(), key=lambda kv: str(kv[0])):
            where = f"{path}.values[{prop_name}]"
            prop = props.get(prop_name)
            param = params.get(param_name) if isinstance(param_name, str) else None
            if prop is None:
                out.add(
                    where,
                    f"{object_type} has no property {quoted(prop_name)}",
                    "UNRESOLVED_REFERENCE",
                )
            elif kind == RuleKind.MODIFY_OBJECT and prop_name == target.get("primary_key"):
                out.add(where, "the primary key cannot be modified", "INVALID_VALUE")
            if param is None:
                out.add(where, f"no parameter {quoted(param_name)}", "UNRESOLVED_REFERENCE")
            elif prop is not None and param.get("data_type") != prop.get("data_type"):
                out.add(
                    where,
                    f"parameter {quoted(param_name)} must have the data type of property"
                    f" {quoted(prop_name)} ({type_name(prop.get('data_type'))})",
                    "TYPE_MISMATCH",
                )
        if kind == RuleKind.CREATE_OBJECT:
            missing = [
                name
                for name, prop in props.items()
                if (prop.get("required") is True or name == target.get("primary_key"))
                and name not in values
            ]
            if missing:
                out.add(
                    path + ".values",
                    f"must set the primary key and required properties: {', '.join(missing)}",
                    "REQUIRED",
                )

    def _link_rule(
        self,
        out: _Violations,
        path: str,
        link_type: Any,
        values: dict[Any, Any],
        params: dict[str, dict[str, Any]],
    ) -> None:
        link = self._reference(out, path + ".link_type", link_type, LINK_TYPES, True)
        if set(values) != set(LINK_RULE_VALUES):
            out.add(
                path + ".values", "must map exactly 'from' and 'to' to parameters", "INVALID_VALUE"
            )
        for end in LINK_RULE_VALUES:
            if end not in values:
                continue
            param_name = values[end]
            param = params.get(param_name) if isinstance(param_name, str) else None
            where = f"{path}.values[{end}]"
            if param is None:
                out.add(where, f"no parameter {quoted(param_name)}", "UNRESOLVED_REFERENCE")
            elif link is not None and param.get("object_type") != link.get(f"{end}_object_type"):
                out.add(
                    where,
                    f"parameter {quoted(param_name)} must reference objects of type"
                    f" {link.get(f'{end}_object_type')}",
                    "TYPE_MISMATCH",
                )

    def _reference(
        self, out: _Violations, path: str, value: Any, collection: str, required: bool
    ) -> Resource | None:
        """The resource of ``collection`` that ``value`` names, else ``None``, reporting why."""
        name = _string(out, path, value, required=required)
        if not name:
            return None
        if not _is_name(collection, name):
            out.add(
                path, f"{quoted(name)} is not a valid {SINGULAR[collection]} name", "INVALID_NAME"
            )
            return None
        resource = self.snapshot.get(resource_key(collection, name))
        if resource is None:
            out.add(path, f"no {SINGULAR[collection]} named {name}", "UNRESOLVED_REFERENCE")
        return resource

    def _name_list(
        self, out: _Violations, path: str, value: Any, collection: str
    ) -> list[tuple[int, str]]:
        """The resolvable, first-seen entries of a list of references, reporting the rest."""
        if not isinstance(value, list):
            out.add(path, "must be a list", "WRONG_TYPE")
            return []
        seen: set[str] = set()
        good: list[tuple[int, str]] = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item in seen:
                out.add(f"{path}[{i}]", f"{item} is listed twice", "DUPLICATE_NAME")
                continue
            if self._reference(out, f"{path}[{i}]", item, collection, required=True) is not None:
                seen.add(item)
                good.append((i, item))
        return good

    def _interface_properties(self, name: str) -> dict[str, tuple[dict[str, Any], str]]:
        """Properties an interface requires, its ancestors' included: name -> (property, owner)."""
        out: dict[str, tuple[dict[str, Any], str]] = {}
        stack, seen = [name], set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            resource = self.snapshot.get(resource_key(INTERFACES, current))
            if resource is None:
                continue
            for prop_name, prop in by_name(resource.get("properties")).items():
                out.setdefault(prop_name, (prop, current))
            stack.extend(p for p in _list(resource.get("extends")) if isinstance(p, str))
        return out

    def _cycle_through(self, start: str, target: Any) -> list[str]:
        """A path of ``extends`` from ``start`` back to ``target``, or ``[]`` if none."""
        parents: dict[str, str | None] = {start: None}
        stack = [start]
        while stack:
            current = stack.pop()
            resource = self.snapshot.get(resource_key(INTERFACES, current))
            for parent in _list((resource or {}).get("extends")):
                if not isinstance(parent, str):
                    continue
                if parent == target:
                    path: list[str] = []
                    node: str | None = current
                    while node is not None:
                        path.append(node)
                        node = parents[node]
                    return [*reversed(path), parent]
                if parent not in parents:
                    parents[parent] = current
                    stack.append(parent)
        return []


class _Violations:
    """Collects violations under one resource's field prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[FieldViolation] = []

    def add(self, path: str, description: str, reason: str) -> None:
        field = f"{self.prefix}.{path}" if path else self.prefix
        self.items.append(FieldViolation(field, description, reason))


def _check_fields(out: _Violations, path: str, value: dict[str, Any], known: Set[str]) -> None:
    for name in sorted(value.keys() - known, key=str):
        out.add(path + str(name), "unknown field", "UNKNOWN_FIELD")


def _check_unique(
    out: _Violations, path: str, name: str | None, seen: dict[str, str], kind: str
) -> None:
    """Names within one resource are unique even ignoring case.

    They become columns and identifiers in places that fold case.
    """
    if name is None:
        return
    other = seen.get(name.lower())
    if other is None:
        seen[name.lower()] = name
    elif other == name:
        out.add(path, f"duplicate {kind} {quoted(name)}", "DUPLICATE_NAME")
    else:
        out.add(
            path,
            f"{kind} {quoted(name)} differs from {quoted(other)} only in case",
            "DUPLICATE_NAME",
        )


def _string(out: _Violations, path: str, value: Any, *, required: bool) -> str | None:
    """``value`` if it is a string (non-empty when required), else ``None``, reporting why."""
    if not isinstance(value, str):
        out.add(path, "must be a string", "WRONG_TYPE")
        return None
    if required and not value:
        out.add(path, "is required", "REQUIRED")
        return None
    return value


def _name(out: _Violations, path: str, value: Any, pascal: bool) -> str | None:
    """``value`` if it is a well-formed api name, else ``None``, reporting why."""
    name = _string(out, path, value, required=True)
    if name is None:
        return None
    form, pattern = ("PascalCase", PASCAL_CASE) if pascal else ("camelCase", CAMEL_CASE)
    if pattern.fullmatch(name) is None:
        out.add(path, f"{quoted(name)} must be {form} letters and digits", "INVALID_NAME")
        return None
    if len(name) > MAX_NAME:
        out.add(path, f"must be at most {MAX_NAME} characters", "TOO_LONG")
        return None
    return name


def _check_text(out: _Violations, path: str, value: Any, limit: int, required: bool) -> None:
    text = _string(out, path, value, required=required)
    if text is not None and len(text) > limit:
        out.add(path, f"must be at most {limit} characters", "TOO_LONG")


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed


def _list(value: Any) -> list[Any]:
    """A list field as a list; malformed values are reported where the field is checked."""
    return value if isinstance(value, list) else []


def _is_data_type(value: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(value, dict)
        and _one_of(value.get("base"), BASE_TYPES)
        and isinstance(value.get("array"), bool)
    )


def _check_data_type(out: _Violations, path: str, value: Any) -> None:
    if not isinstance(value, dict):
        out.add(path, "must be an object {base, array}", "WRONG_TYPE")
        return
    if value.get("base") == "":
        out.add(path + ".base", "is required", "REQUIRED")
    elif not _one_of(value.get("base"), BASE_TYPES):
        out.add(path + ".base", f"must be one of {', '.join(BaseType)}", "INVALID_VALUE")
    if not isinstance(value.get("array"), bool):
        out.add(path + ".array", "must be true or false", "WRONG_TYPE")
    for name in value:
        if name not in ("base", "array"):
            out.add(f"{path}.{name}", "unknown field", "UNKNOWN_FIELD")


def _check_enum(out: _Violations, path: str, value: Any, data_type: Any) -> None:
    if not isinstance(value, list):
        out.add(path, "must be a list of strings", "WRONG_TYPE")
        return
    if value and _is_data_type(data_type) and data_type["base"] not in ENUM_TYPES:
        out.add(path, "only string and text properties take enum values", "INVALID_VALUE")
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            out.add(f"{path}[{i}]", "must be a non-empty string", "WRONG_TYPE")
        elif len(item) > MAX_ENUM_VALUE:
            out.add(f"{path}[{i}]", f"must be at most {MAX_ENUM_VALUE} characters", "TOO_LONG")
        elif item in seen:
            out.add(f"{path}[{i}]", f"{quoted(item)} is listed twice", "DUPLICATE_NAME")
        else:
            seen.add(item)


def outsized(
    changes: Mapping[str, Resource | None], texts: Mapping[str, str], where: Mapping[str, str]
) -> list[FieldViolation]:
    """A violation for each resource past :data:`MAX_RESOURCE_BYTES` or :data:`MAX_NESTING`.

    ``texts`` holds the written resources' canonical JSON, by key; ``where`` names the
    request field each key came from (the key itself stands in otherwise).
    """
    out = []
    for key, text in texts.items():
        field = where.get(key, key)
        if len(text) * 4 > MAX_RESOURCE_BYTES:  # else: no character takes more than 4 bytes
            size = len(text.encode())
            if size > MAX_RESOURCE_BYTES:
                out.append(
                    FieldViolation(
                        field,
                        f"{key} is {size} bytes as JSON; a resource holds at most"
                        f" {MAX_RESOURCE_BYTES}",
                        "TOO_LARGE",
                    )
                )
        if nested_deeper(changes[key], text, MAX_NESTING):
            out.append(too_deep(field))
    return out


def too_deep(field: str) -> FieldViolation:
    """The violation of a value nested past :data:`MAX_NESTING`."""
    return FieldViolation(
        field, f"must nest objects and lists at most {MAX_NESTING} deep", "TOO_DEEP"
    )


def long_texts(**texts: str) -> list[FieldViolation]:
    """A violation for each of ``texts`` (by field name) past :data:`MAX_MESSAGE` characters."""
    return [
        FieldViolation(name, f"must be at most {MAX_MESSAGE} characters", "TOO_LONG")
        for name, text in texts.items()
        if len(text) > MAX_MESSAGE
    ]
