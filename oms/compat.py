"""Compatibility of an ontology change, rule by rule, in the modes schema registries use.

The ontology is read as a closed schema for its data: objects, links and action calls.

- ``BACKWARD`` (the default): everything valid under the old ontology stays valid under the
  new one, so existing objects and existing callers keep working. Deleting, narrowing, adding
  constraints (required, unique, fewer enum values) and required additions break it.
- ``FORWARD``: everything valid under the new ontology is valid under the old one, so readers
  built on the old ontology understand what new writers produce. Additions (types,
  properties, enum values), widening and relaxed constraints break it; it is BACKWARD with old
  and new swapped.
- ``FULL``: both. ``NONE``: nothing is breaking; every change is still reported.

Every change gets a finding with a stable rule id (see :data:`RULES`); its severity is
``BREAKING`` when the rule breaks the mode's direction, else the rule's own severity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oms.diff import ORDER_SUFFIX, item_path
from oms.model import (
    ACTION_TYPES,
    INTERFACES,
    LINK_TYPES,
    OBJECT_TYPES,
    SHARED_PROPERTIES,
    Ontology,
    Resource,
    Status,
    by_name,
    prefetch,
    split_key,
    type_name,
)


def _change(old: Any, new: Any) -> str:
    """A change of value as people read the API: both values in their JSON form."""
    return f"{json.dumps(old, ensure_ascii=False)} -> {json.dumps(new, ensure_ascii=False)}"


class Severity(StrEnum):
    """How much a finding matters under the branch's compatibility mode."""

    BREAKING = "BREAKING"
    WARNING = "WARNING"
    INFO = "INFO"


class CompatibilityMode(StrEnum):
    """Which direction of compatibility a branch promises (see the module docstring)."""

    BACKWARD = "BACKWARD"
    FORWARD = "FORWARD"
    FULL = "FULL"
    NONE = "NONE"


@dataclass(frozen=True)
class Rule:
    """One kind of change and the directions of compatibility it breaks."""

    rule_id: str
    backward: bool
    forward: bool
    severity: Severity
    summary: str


@dataclass(frozen=True)
class Finding:
    """One change and what it means: ``path`` is the resource key, then the field path."""

    rule_id: str
    severity: Severity
    path: str
    message: str

    @property
    def key(self) -> str:
        """The resource key the finding is about (api names never hold a dot)."""
        return self.path.split(".", 1)[0]


_B, _F, _BF, _NO = (True, False), (False, True), (True, True), (False, False)
_INFO, _WARN = Severity.INFO, Severity.WARNING
_TABLE: list[tuple[str, tuple[bool, bool], Severity, str]] = [
    ("OBJECT_TYPE_ADDED", _F, _INFO, "an object type was added"),
    ("OBJECT_TYPE_DELETED", _B, _WARN, "an object type was deleted"),
    ("OBJECT_TYPE_DEPRECATED", _NO, _WARN, "an object type was deprecated"),
    ("OBJECT_TYPE_STATUS_CHANGED", _NO, _INFO, "an object type's status changed"),
    ("PRIMARY_KEY_CHANGED", _BF, _WARN, "the primary key changed: objects are identified anew"),
    ("TITLE_PROPERTY_CHANGED", _NO, _INFO, "the title property changed"),
    ("INTERFACE_IMPLEMENTATION_ADDED", _F, _INFO, "an object type implements another interface"),
    (
        "INTERFACE_IMPLEMENTATION_REMOVED",
        _B,
        _WARN,
        "an object type no longer implements an interface",
    ),
    ("PROPERTY_ADDED", _F, _INFO, "an optional property was added"),
    ("REQUIRED_PROPERTY_ADDED", _BF, _WARN, "a required property was added: old objects lack it"),
    ("PROPERTY_DELETED", _B, _WARN, "a property was deleted"),
    ("REQUIRED_PROPERTY_DELETED", _BF, _WARN, "a required property was deleted"),
    ("PROPERTY_TYPE_WIDENED", _F, _INFO, "a data type was widened"),
    ("PROPERTY_TYPE_NARROWED", _B, _WARN, "a data type was narrowed"),
    ("PROPERTY_TYPE_CHANGED", _BF, _WARN, "a data type changed incompatibly"),
    ("PROPERTY_MADE_REQUIRED", _B, _WARN, "a property became required"),
    ("PROPERTY_MADE_OPTIONAL", _F, _INFO, "a property became optional"),
    ("PROPERTY_UNIQUE_ADDED", _B, _WARN, "a property became unique"),
    ("PROPERTY_UNIQUE_REMOVED", _F, _INFO, "a property is no longer unique"),
    ("ENUM_VALUES_REMOVED", _B, _WARN, "enum values were removed"),
    ("ENUM_VALUES_ADDED", _F, _INFO, "enum values were added"),
    ("ENUM_CONSTRAINT_ADDED", _B, _WARN, "a free property was restricted to enum values"),
    ("ENUM_CONSTRAINT_REMOVED", _F, _INFO, "a property is no longer restricted to enum values"),
    ("SHARED_PROPERTY_LINK_CHANGED", _NO, _INFO, "a property's shared property changed"),
    ("PROPERTY_ORDER_CHANGED", _NO, _INFO, "the display order of properties changed"),
    ("ACTION_PARAMETER_ORDER_CHANGED", _NO, _INFO, "the display order of parameters changed"),
    ("METADATA_CHANGED", _NO, _INFO, "a display name, description or other metadata changed"),
    ("LINK_TYPE_ADDED", _F, _INFO, "a link type was added"),
    ("LINK_TYPE_DELETED", _B, _WARN, "a link type was deleted"),
    ("LINK_ENDPOINT_CHANGED", _BF, _WARN, "a link type connects other object types"),
    ("LINK_CARDINALITY_NARROWED", _B, _WARN, "a link type allows fewer links"),
    ("LINK_CARDINALITY_WIDENED", _F, _INFO, "a link type allows more links"),
    ("LINK_CARDINALITY_CHANGED", _BF, _WARN, "a link type's cardinality changed incompatibly"),
    ("INTERFACE_ADDED", _F, _INFO, "an interface was added"),
    ("INTERFACE_DELETED", _B, _WARN, "an interface was deleted"),
    ("INTERFACE_PROPERTY_ADDED", _F, _INFO, "an interface requires another property"),
    ("INTERFACE_PROPERTY_REMOVED", _B, _WARN, "an interface property was removed"),
    ("INTERFACE_EXTENDS_ADDED", _F, _INFO, "an interface extends another interface"),
    ("INTERFACE_EXTENDS_REMOVED", _B, _WARN, "an interface no longer extends an interface"),
    ("SHARED_PROPERTY_ADDED", _F, _INFO, "a shared property was added"),
    ("SHARED_PROPERTY_DELETED", _B, _WARN, "a shared property was deleted"),
    ("ACTION_TYPE_ADDED", _F, _INFO, "an action type was added"),
    ("ACTION_TYPE_DELETED", _B, _WARN, "an action type was deleted"),
    ("ACTION_PARAMETER_ADDED", _F, _INFO, "an optional action parameter was added"),
    ("ACTION_PARAMETER_ADDED_REQUIRED", _BF, _WARN, "a required action parameter was added"),
    ("ACTION_PARAMETER_REMOVED", _B, _WARN, "an action parameter was removed"),
    ("ACTION_REQUIRED_PARAMETER_REMOVED", _BF, _WARN, "a required action parameter was removed"),
    ("ACTION_PARAMETER_TYPE_WIDENED", _F, _INFO, "an action parameter's type was widened"),
    ("ACTION_PARAMETER_TYPE_NARROWED", _B, _WARN, "an action parameter's type was narrowed"),
    ("ACTION_PARAMETER_TYPE_CHANGED", _BF, _WARN, "an action parameter's type changed"),
    ("ACTION_PARAMETER_MADE_REQUIRED", _B, _WARN, "an action parameter became required"),
    ("ACTION_PARAMETER_MADE_OPTIONAL", _F, _INFO, "an action parameter became optional"),
    ("ACTION_PERMISSION_CHANGED", _NO, _WARN, "the permission to run an action changed"),
    ("ACTION_RULES_CHANGED", _NO, _WARN, "what an action does changed"),
]
RULES: dict[str, Rule] = {
    rule_id: Rule(rule_id, back, fwd, severity, summary)
    for rule_id, (back, fwd), severity, summary in _TABLE
}
"""Every rule, by id; the ids are stable API."""

WIDENINGS = frozenset(
    {
        ("integer", "long"),
        ("integer", "double"),
        ("long", "double"),
        ("string", "text"),
        ("date", "timestamp"),
    }
)
"""Scalar type changes that lose no value: every old value is a valid new value."""

_ADDED = {
    OBJECT_TYPES: "OBJECT_TYPE_ADDED",
    LINK_TYPES: "LINK_TYPE_ADDED",
    ACTION_TYPES: "ACTION_TYPE_ADDED",
    INTERFACES: "INTERFACE_ADDED",
    SHARED_PROPERTIES: "SHARED_PROPERTY_ADDED",
}
_DELETED = {c: r.replace("_ADDED", "_DELETED") for c, r in _ADDED.items()}


def check_compatibility(
    old: Ontology,
    new: Ontology,
    mode: CompatibilityMode | str = CompatibilityMode.BACKWARD,
    keys: Iterable[str] | None = None,
) -> list[Finding]:
    """A finding for every change from ``old`` to ``new``, sorted by resource key.

    ``keys``, when given, are the only keys that may differ; only those are compared.
    """
    report = _Report(CompatibilityMode(mode))
    candidates = set(old) | set(new) if keys is None else set(keys)
    prefetch(old, candidates)
    prefetch(new, candidates)
    for key in sorted(candidates):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        collection, api_name = split_key(key)
        if before is None:
            report.add(_ADDED[collection], key, f"{api_name} was added")
        elif after is None:
            report.add(_DELETED[collection], key, f"{api_name} was deleted")
        else:
            _COMPARE[collection](report, key, before, after)
    return report.findings


def has_breaking(findings: Iterable[Finding]) -> bool:
    """Whether any finding breaks the mode it was computed in."""
    return any(f.severity is Severity.BREAKING for f in findings)


def severity_of(rule: Rule, mode: CompatibilityMode) -> Severity:
    """``BREAKING`` when the rule breaks the mode's direction, else the rule's own severity."""
    breaking = {
        CompatibilityMode.BACKWARD: rule.backward,
        CompatibilityMode.FORWARD: rule.forward,
        CompatibilityMode.FULL: rule.backward or rule.forward,
        CompatibilityMode.NONE: False,
    }[mode]
    return Severity.BREAKING if breaking else rule.severity


class _Report:
    def __init__(self, mode: CompatibilityMode) -> None:
        self._severity = {rule_id: severity_of(rule, mode) for rule_id, rule in RULES.items()}
        self.findings: list[Finding] = []

    def add(self, rule_id: str, path: str, message: str) -> None:
        self.findings.append(Finding(rule_id, self._severity[rule_id], path, message))


def _type_change(old: Any, new: Any) -> str:
    """``WIDENED``, ``NARROWED`` or ``CHANGED`` for two different data types."""
    if isinstance(old, dict) and isinstance(new, dict) and old.get("array") == new.get("array"):
        pair = (str(old.get("base")), str(new.get("base")))
        if pair in WIDENINGS:
            return "WIDENED"
        if pair[::-1] in WIDENINGS:
            return "NARROWED"
    return "CHANGED"


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fields that differ, in the order they appear."""
    return [k for k in (*old, *(k for k in new if k not in old)) if old.get(k) != new.get(k)]


def _metadata(
    report: _Report, path: str, old: dict[str, Any], new: dict[str, Any], handled: set[str]
) -> None:
    """METADATA_CHANGED for each differing field no rule covers."""
    for name in _changed(old, new):
        if name not in handled:
            report.add("METADATA_CHANGED", f"{path}.{name}", f"{name} changed")


def _value_rules(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """The rules on what a value may be: data type and enum values (properties, shared ones)."""
    if old.get("data_type") != new.get("data_type"):
        change = _type_change(old.get("data_type"), new.get("data_type"))
        report.add(
            f"PROPERTY_TYPE_{change}",
            f"{path}.data_type",
            f"data type {type_name(old.get('data_type'))} -> {type_name(new.get('data_type'))}",
        )
    if old.get("enum_values") == new.get("enum_values"):
        return
    before, after = _strings(old.get("enum_values")), _strings(new.get("enum_values"))
    if not before:
        report.add("ENUM_CONSTRAINT_ADDED", f"{path}.enum_values", "values now restricted")
        return
    if not after:
        report.add("ENUM_CONSTRAINT_REMOVED", f"{path}.enum_values", "values no longer restricted")
        return
    removed = [v for v in before if v not in after]
    added = [v for v in after if v not in before]
    if removed:
        report.add("ENUM_VALUES_REMOVED", f"{path}.enum_values", f"removed {removed}")
    if added:
        report.add("ENUM_VALUES_ADDED", f"{path}.enum_values", f"added {added}")


_FLAGS = {
    "required": ("PROPERTY_MADE_REQUIRED", "PROPERTY_MADE_OPTIONAL"),
    "unique": ("PROPERTY_UNIQUE_ADDED", "PROPERTY_UNIQUE_REMOVED"),
}


def _property(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """One property (of an object type or an interface) changed.

    Called per changed property, so it looks at the changed fields only.
    """
    changed = _changed(old, new)
    if "data_type" in changed or "enum_values" in changed:
        _value_rules(report, path, old, new)
    for name in changed:
        if name in _FLAGS:
            if bool(old.get(name)) != bool(new.get(name)):
                made, unmade = _FLAGS[name]
                rule = made if new.get(name) else unmade
                report.add(
                    rule, f"{path}.{name}", f"{name}: {_change(old.get(name), new.get(name))}"
                )
        elif name == "shared_property":
            report.add(
                "SHARED_PROPERTY_LINK_CHANGED",
                f"{path}.shared_property",
                _change(old.get(name), new.get(name)),
            )
        elif name not in ("api_name", "data_type", "enum_values"):
            report.add("METADATA_CHANGED", f"{path}.{name}", f"{name} changed")


def _properties(report: _Report, key: str, old: Any, new: Any, *, interface: bool) -> None:
    before, after = by_name(old), by_name(new)
    for name, prop in before.items():
        path = f"{key}.{item_path('properties', name)}"
        if name not in after:
            if interface:
                rule = "INTERFACE_PROPERTY_REMOVED"
            else:
                rule = "REQUIRED_PROPERTY_DELETED" if prop.get("required") else "PROPERTY_DELETED"
            report.add(rule, path, f"property {name} was removed")
        elif after[name] != prop:
            _property(report, path, prop, after[name])
    for name, prop in after.items():
        if name not in before:
            if interface:
                rule = "INTERFACE_PROPERTY_ADDED"
            else:
                rule = "REQUIRED_PROPERTY_ADDED" if prop.get("required") else "PROPERTY_ADDED"
            report.add(rule, f"{key}.{item_path('properties', name)}", f"property {name} was added")
    shared_old = [n for n in before if n in after]
    shared_new = [n for n in after if n in before]
    if shared_old != shared_new:
        report.add(
            "PROPERTY_ORDER_CHANGED", f"{key}.properties{ORDER_SUFFIX}", "properties reordered"
        )


def _names(report: _Report, path: str, old: Any, new: Any, added: str, removed: str) -> None:
    before, after = _strings(old), _strings(new)
    for name in before:
        if name not in after:
            report.add(removed, f"{path}[{name}]", f"{name} removed")
    for name in after:
        if name not in before:
            report.add(added, f"{path}[{name}]", f"{name} added")


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _object_type(report: _Report, key: str, old: Resource, new: Resource) -> None:
    if old.get("status") != new.get("status"):
        deprecated = new.get("status") == Status.DEPRECATED
        report.add(
            "OBJECT_TYPE_DEPRECATED" if deprecated else "OBJECT_TYPE_STATUS_CHANGED",
            f"{key}.status",
            f"status {_change(old.get('status'), new.get('status'))}",
        )
    for name, rule in (
        ("primary_key", "PRIMARY_KEY_CHANGED"),
        ("title_property", "TITLE_PROPERTY_CHANGED"),
    ):
        if old.get(name) != new.get(name):
            report.add(rule, f"{key}.{name}", f"{name} {_change(old.get(name), new.get(name))}")
    if old.get("properties") != new.get("properties"):
        _properties(report, key, old.get("properties"), new.get("properties"), interface=False)
    _names(
        report,
        f"{key}.interfaces",
        old.get("interfaces"),
        new.get("interfaces"),
        "INTERFACE_IMPLEMENTATION_ADDED",
        "INTERFACE_IMPLEMENTATION_REMOVED",
    )
    handled = {"api_name", "status", "primary_key", "title_property", "properties", "interfaces"}
    _metadata(report, key, old, new, handled)


_CARDINALITY_SIDES = {"ONE": False, "MANY": True}


def _sides(cardinality: Any) -> tuple[bool, bool] | None:
    parts = cardinality.split("_TO_") if isinstance(cardinality, str) else []
    if len(parts) != 2 or any(p not in _CARDINALITY_SIDES for p in parts):
        return None
    return _CARDINALITY_SIDES[parts[0]], _CARDINALITY_SIDES[parts[1]]


def _link_type(report: _Report, key: str, old: Resource, new: Resource) -> None:
    for end in ("from_object_type", "to_object_type"):
        if old.get(end) != new.get(end):
            report.add("LINK_ENDPOINT_CHANGED", f"{key}.{end}", _change(old.get(end), new.get(end)))
    before, after = old.get("cardinality"), new.get("cardinality")
    if before != after:
        old_sides, new_sides = _sides(before), _sides(after)
        change = "CHANGED"
        if old_sides is not None and new_sides is not None:
            fewer = any(o and not n for o, n in zip(old_sides, new_sides, strict=True))
            more = any(n and not o for o, n in zip(old_sides, new_sides, strict=True))
            change = "CHANGED" if fewer and more else "NARROWED" if fewer else "WIDENED"
        report.add(f"LINK_CARDINALITY_{change}", f"{key}.cardinality", f"{before} -> {after}")
    _metadata(
        report, key, old, new, {"api_name", "from_object_type", "to_object_type", "cardinality"}
    )


def _interface(report: _Report, key: str, old: Resource, new: Resource) -> None:
    if old.get("properties") != new.get("properties"):
        _properties(report, key, old.get("properties"), new.get("properties"), interface=True)
    _names(
        report,
        f"{key}.extends",
        old.get("extends"),
        new.get("extends"),
        "INTERFACE_EXTENDS_ADDED",
        "INTERFACE_EXTENDS_REMOVED",
    )
    _metadata(report, key, old, new, {"api_name", "properties", "extends"})


def _shared_property(report: _Report, key: str, old: Resource, new: Resource) -> None:
    _value_rules(report, key, old, new)
    _metadata(report, key, old, new, {"api_name", "data_type", "enum_values"})


def _parameter_type(param: dict[str, Any]) -> Any:
    return (
        param.get("data_type") if param.get("data_type") is not None else param.get("object_type")
    )


def _action_type(report: _Report, key: str, old: Resource, new: Resource) -> None:
    before, after = by_name(old.get("parameters")), by_name(new.get("parameters"))
    for name, param in before.items():
        path = f"{key}.{item_path('parameters', name)}"
        if name not in after:
            rule = (
                "ACTION_REQUIRED_PARAMETER_REMOVED"
                if param.get("required")
                else "ACTION_PARAMETER_REMOVED"
            )
            report.add(rule, path, f"parameter {name} was removed")
            continue
        now = after[name]
        if _parameter_type(param) != _parameter_type(now):
            change = "CHANGED"
            if param.get("data_type") is not None and now.get("data_type") is not None:
                change = _type_change(param["data_type"], now["data_type"])
            report.add(
                f"ACTION_PARAMETER_TYPE_{change}",
                path,
                f"type {_parameter_label(param)} -> {_parameter_label(now)}",
            )
        if bool(param.get("required")) != bool(now.get("required")):
            rule = (
                "ACTION_PARAMETER_MADE_REQUIRED"
                if now.get("required")
                else "ACTION_PARAMETER_MADE_OPTIONAL"
            )
            report.add(
                rule,
                f"{path}.required",
                f"required: {param.get('required')} -> {now.get('required')}",
            )
        _metadata(report, path, param, now, {"api_name", "data_type", "object_type", "required"})
    for name, param in after.items():
        if name not in before:
            rule = (
                "ACTION_PARAMETER_ADDED_REQUIRED"
                if param.get("required")
                else "ACTION_PARAMETER_ADDED"
            )
            report.add(
                rule, f"{key}.{item_path('parameters', name)}", f"parameter {name} was added"
            )
    if [n for n in before if n in after] != [n for n in after if n in before]:
        report.add(
            "ACTION_PARAMETER_ORDER_CHANGED",
            f"{key}.parameters{ORDER_SUFFIX}",
            "parameters reordered",
        )
    if old.get("permission") != new.get("permission"):
        report.add(
            "ACTION_PERMISSION_CHANGED",
            f"{key}.permission",
            _change(old.get("permission"), new.get("permission")),
        )
    if old.get("rules") != new.get("rules"):
        report.add("ACTION_RULES_CHANGED", f"{key}.rules", "the rules changed")
    _metadata(report, key, old, new, {"api_name", "parameters", "permission", "rules"})


def _parameter_label(param: dict[str, Any]) -> str:
    if param.get("data_type") is not None:
        return type_name(param["data_type"])
    return f"object {param.get('object_type')}"


_COMPARE = {
    OBJECT_TYPES: _object_type,
    LINK_TYPES: _link_type,
    ACTION_TYPES: _action_type,
    INTERFACES: _interface,
    SHARED_PROPERTIES: _shared_property,
}
