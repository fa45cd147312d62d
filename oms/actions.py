"""Running an action type, as pure rules: its parameters, its submission criteria, its edits.

:class:`oms.data.ObjectService` reads the branch, calls these in order and commits the edits
in one commit; nothing here reads the store or writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.auth import Principal
from common.errors import FieldViolation, quoted
from oms.model import OBJECT_TYPES, Ontology, Overlay, Resource, RuleKind, by_name, resource_key
from oms.objects import (
    DataView,
    check_data,
    check_object,
    check_value,
    compare,
    link_key,
    object_key,
    pk_text,
    sort_value,
)


@dataclass(frozen=True)
class ActionEdit:
    """One object or link an action changes, with its value before and after (``None``: absent)."""

    key: str
    change: str
    """ADDED, MODIFIED or DELETED."""
    before: Resource | None
    after: Resource | None


def check_parameters(
    action: Resource, given: Mapping[str, Any], snapshot: Ontology
) -> tuple[dict[str, Any], list[FieldViolation]]:
    """The parameters as the rules use them (checked, normalized) and every violation.

    Paths are ``parameters.<name>``: unknown, required and absent, not of the parameter's
    type, or (an object parameter) not the primary key of an object on the branch.
    """
    params = by_name(action.get("parameters"))
    out: list[FieldViolation] = []
    values: dict[str, Any] = {}
    for name in sorted(given.keys() - params.keys()):
        out.append(
            FieldViolation(
                f"parameters.{name}",
                f"{action['api_name']} has no parameter {quoted(name)}",
                "UNKNOWN_PARAMETER",
            )
        )
    for name, param in params.items():
        path = f"parameters.{name}"
        value = given.get(name)
        if value is None:
            if param.get("required") is True:
                out.append(FieldViolation(path, "required", "REQUIRED"))
            continue
        object_type = param.get("object_type")
        if object_type:
            if not isinstance(value, str | int) or isinstance(value, bool):
                out.append(FieldViolation(path, "must be a primary key", "INVALID_TYPE"))
            elif object_key(str(object_type), pk_text(value)) not in snapshot:
                out.append(
                    FieldViolation(
                        path,
                        f"no {object_type} object with primary key {quoted(pk_text(value))}",
                        "OBJECT_NOT_FOUND",
                    )
                )
            else:
                values[name] = pk_text(value)
            continue
        found, stored = check_value(path, {"data_type": param.get("data_type")}, value)
        out.extend(found)
        if not found:
            values[name] = stored
    return values, out


def failed_criteria(
    action: Resource, params: Mapping[str, Any], snapshot: Ontology, caller: Principal
) -> list[FieldViolation]:
    """The submission criteria that fail, each with its own message."""
    definitions = by_name(action.get("parameters"))
    out: list[FieldViolation] = []
    for i, criterion in enumerate(action.get("submission_criteria", [])):
        if criterion.get("caller_permission"):
            passed = caller.has(str(criterion["caller_permission"]))
        elif criterion.get("caller_role"):
            passed = criterion["caller_role"] in caller.roles
        else:
            have, prop = _subject(criterion, definitions, params, snapshot)
            want = criterion.get("value")
            if prop is not None:
                have = None if have is None else sort_value(prop, have)
                want = None if want is None else sort_value(prop, want)
            passed = compare(str(criterion.get("operator")), have, want)
        if not passed:
            out.append(
                FieldViolation(
                    f"submission_criteria[{i}]", str(criterion.get("message")), "CRITERION_FAILED"
                )
            )
    return out


def _subject(
    criterion: Mapping[str, Any],
    definitions: Mapping[str, dict[str, Any]],
    params: Mapping[str, Any],
    snapshot: Ontology,
) -> tuple[Any, dict[str, Any] | None]:
    """What a parameter criterion tests: the value and the property definition it has."""
    name = str(criterion.get("parameter"))
    value = params.get(name)
    prop_name = criterion.get("property")
    if not prop_name:
        return value, None
    object_type = str(definitions[name].get("object_type"))
    definition = snapshot.get(resource_key(OBJECT_TYPES, object_type)) or {}
    prop = by_name(definition.get("properties")).get(str(prop_name))
    current = None if value is None else snapshot.get(object_key(object_type, value))
    return (None if current is None else current.get(str(prop_name))), prop


def plan_edits(
    action: Resource, params: Mapping[str, Any], snapshot: Ontology, data: DataView
) -> tuple[dict[str, Resource | None], list[FieldViolation]]:
    """The changes the rules make in order, each seeing the ones before, and what they break.

    Violations are ``rules[i]`` for a rule that cannot apply (its object or link missing or
    already there) and the data checks of the result by key (types, required, unique,
    endpoints, cardinality, links left to a deleted object).
    """
    changes: dict[str, Resource | None] = {}
    out: list[FieldViolation] = []
    for i, rule in enumerate(action.get("rules", [])):
        after = Overlay(snapshot, changes)
        bound = {p: params[v] for p, v in rule.get("values", {}).items() if v in params}
        kind, where = rule.get("kind"), f"rules[{i}]"
        if kind in (RuleKind.CREATE_LINK, RuleKind.DELETE_LINK):
            key = link_key(str(rule["link_type"]), str(bound.get("from")), str(bound.get("to")))
            creates = kind == RuleKind.CREATE_LINK
            value = {"from": bound.get("from"), "to": bound.get("to")} if creates else None
            out.extend(_apply(changes, after, where, key, value, create=creates))
            continue
        object_type = str(rule.get("object_type"))
        definition = after.get(resource_key(OBJECT_TYPES, object_type)) or {}
        if kind == RuleKind.CREATE_OBJECT:
            _, stored = check_object(definition, bound, path=where)
            pk = pk_text(stored.get(str(definition.get("primary_key")), ""))
            key = object_key(object_type, pk)
            out.extend(_apply(changes, after, where, key, stored, create=True))
            continue
        key = object_key(object_type, str(params.get(str(rule.get("object_parameter")))))
        current = after.get(key)
        if kind == RuleKind.MODIFY_OBJECT and current is not None:
            merged = {**current, **bound}
            _, stored = check_object(definition, merged, path=where)
            changes[key] = stored
        else:
            out.extend(_apply(changes, after, where, key, None, create=False))
    if not out:
        out.extend(check_data(Overlay(snapshot, changes), changes, data, where={}))
    return changes, out


def _apply(
    changes: dict[str, Resource | None],
    after: Ontology,
    where: str,
    key: str,
    value: Resource | None,
    *,
    create: bool,
) -> list[FieldViolation]:
    """Create ``key`` (refused when present) or change or delete it (refused when absent)."""
    exists = key in after
    if create and exists:
        return [FieldViolation(where, f"{key} already exists", "ALREADY_EXISTS")]
    if not create and not exists:
        return [FieldViolation(where, f"{key} does not exist", "NOT_FOUND")]
    changes[key] = value
    return []


def edits_of(changes: Mapping[str, Resource | None], snapshot: Ontology) -> list[ActionEdit]:
    """Every key the changes alter, in key order, with before and after."""
    out: list[ActionEdit] = []
    for key in sorted(changes):
        before, after = snapshot.get(key), changes[key]
        if before == after:
            continue
        change = "ADDED" if before is None else "DELETED" if after is None else "MODIFIED"
        out.append(ActionEdit(key, change, before, after))
    return out
