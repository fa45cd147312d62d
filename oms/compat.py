"""Compatibility of an ontology change, rule by rule, in Schema Registry's modes.

The ontology is the schema of its data: objects, links and action calls. The modes are
Confluent Schema Registry's, with readers that ignore what they do not know:

- ``BACKWARD`` (the default): readers on the new ontology read data written under the old
  one; upgrade consumers first. Adding optional things is safe; adding required ones,
  narrowing and new constraints break it.
- ``FORWARD``: readers on the old ontology read data written under the new one; upgrade
  producers first. Additions are safe; widening, relaxed constraints and removing a required
  property break it.
- ``FULL``: both. ``NONE``: nothing is breaking; every change is still reported.

One deliberate difference, *removal protection*: Schema Registry's ``BACKWARD`` allows
deleting a field, because a reader on the new schema skips it. An ontology's consumers also
address types, properties, links and parameters by name (apps, filters, action calls), so
here every removal (the rules with ``removal`` set) breaks ``BACKWARD`` and ``FULL``. The way
out is deprecate-then-remove: a property marked ``deprecated``, or an object type with status
``DEPRECATED``, in the version compared against may be removed without breaking.

Every change gets a finding with a stable rule id (see :data:`RULES`, published as the
catalogue); its severity is ``BREAKING`` when the rule breaks the mode's direction, else the
rule's own severity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from common.errors import quoted
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
from oms.objects import is_data_key


def _change(old: Any, new: Any) -> str:
    return f"{quoted(old)} -> {quoted(new)}"


class Severity(StrEnum):
    """How much a finding matters under the branch's compatibility mode."""

    BREAKING = "BREAKING"
    WARNING = "WARNING"
    INFO = "INFO"


class CompatibilityMode(StrEnum):
    """Which direction of compatibility a branch promises (see the module docstring).

    A ``_TRANSITIVE`` mode holds its direction against every released version (every tag on
    the branch's history), not only the version a change replaces, as in Schema Registry.
    """

    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    NONE = "NONE"

    @property
    def direction(self) -> CompatibilityMode:
        """The mode without ``_TRANSITIVE``: what one comparison checks."""
        return CompatibilityMode(self.value.removesuffix("_TRANSITIVE"))

    @property
    def transitive(self) -> bool:
        return self is not self.direction


@dataclass(frozen=True)
class Rule:
    """One kind of change, the directions of compatibility it breaks, why, and the safe way.

    ``removal`` marks the rules that break ``BACKWARD`` here although Schema Registry's
    ``BACKWARD`` allows them (removal protection, see the module docstring).
    """

    rule_id: str
    backward: bool
    forward: bool
    severity: Severity
    summary: str
    why: str
    fix: str
    removal: bool = False


@dataclass(frozen=True)
class Finding:
    """One change and what it means: ``path`` is the resource key, then the field path."""

    rule_id: str
    severity: Severity
    path: str
    message: str
    against: str = ""
    """The tag of the released version it was found against (transitive modes); empty for
    the version the change replaces."""
    exempted: bool = False
    """The branch exempts the rule: reported at the rule's own severity, never breaking."""

    @property
    def rule(self) -> Rule:
        """The catalogue entry: why the change matters and how to make it safely."""
        return RULES[self.rule_id]

    @property
    def key(self) -> str:
        """The resource key the finding is about (api names never hold a dot)."""
        return self.path.split(".", 1)[0]


_B, _F, _BF, _NO = (True, False), (False, True), (True, True), (False, False)
_INFO, _WARN = Severity.INFO, Severity.WARNING
_ADD_SAFE = "Nothing to do: no reader or writer of either version is affected."
_REMOVAL_FIX = (
    "Deprecate it first (status DEPRECATED for a type, `deprecated: true` for a property) and"
    " let the deprecation reach the branch; removing it later is then not breaking."
)
_RULES: list[Rule] = [
    Rule(
        "OBJECT_TYPE_ADDED",
        *_NO,
        _INFO,
        "an object type was added",
        "Old data holds no objects of the type, and readers on the old ontology ignore the"
        " objects they do not know.",
        _ADD_SAFE,
    ),
    Rule(
        "OBJECT_TYPE_DELETED",
        *_B,
        _WARN,
        "an object type was deleted",
        "Its objects, and the apps and actions that address the type by name, lose their"
        " definition.",
        _REMOVAL_FIX,
        removal=True,
    ),
    Rule(
        "DEPRECATED_OBJECT_TYPE_DELETED",
        *_NO,
        _WARN,
        "a deprecated object type was deleted",
        "The type was already DEPRECATED in the version compared against: consumers were told"
        " to move off it.",
        "Check that no consumer still reads the type before the merge.",
    ),
    Rule(
        "OBJECT_TYPE_DEPRECATED",
        *_NO,
        _WARN,
        "an object type was deprecated",
        "Nothing changes for data; consumers are warned that the type will go.",
        "Tell the type's consumers, then delete it in a later change.",
    ),
    Rule(
        "OBJECT_TYPE_STATUS_CHANGED",
        *_NO,
        _INFO,
        "an object type's status changed",
        "The status is advice to people; it does not change what data is valid.",
        _ADD_SAFE,
    ),
    Rule(
        "PRIMARY_KEY_CHANGED",
        *_BF,
        _WARN,
        "the primary key changed: objects are identified anew",
        "Every object is looked up by its primary key; old and new readers would name the same"
        " object differently.",
        "Create a new object type with the new key, migrate the objects, deprecate the old type.",
    ),
    Rule(
        "TITLE_PROPERTY_CHANGED",
        *_NO,
        _INFO,
        "the title property changed",
        "Only how objects are shown changes.",
        _ADD_SAFE,
    ),
    Rule(
        "INTERFACE_IMPLEMENTATION_ADDED",
        *_NO,
        _INFO,
        "an object type implements another interface",
        "The type already has the interface's properties (validation checks it); readers of"
        " the interface simply find more types.",
        _ADD_SAFE,
    ),
    Rule(
        "INTERFACE_IMPLEMENTATION_REMOVED",
        *_B,
        _WARN,
        "an object type no longer implements an interface",
        "Consumers that reach the type's objects through the interface stop finding them.",
        "Move those consumers to the object type itself first.",
        removal=True,
    ),
    Rule(
        "PROPERTY_ADDED",
        *_NO,
        _INFO,
        "an optional property was added",
        "Old objects simply lack the optional value, and old readers ignore a property they do"
        " not know.",
        _ADD_SAFE,
    ),
    Rule(
        "REQUIRED_PROPERTY_ADDED",
        *_B,
        _WARN,
        "a required property was added: old objects lack it",
        "Objects written under the old ontology have no value for it, so they are no longer valid.",
        "Add it as optional, backfill every object, then make it required.",
    ),
    Rule(
        "PROPERTY_DELETED",
        *_B,
        _WARN,
        "a property was deleted",
        "Its values are no longer defined, and the apps, filters and actions that name the"
        " property break.",
        _REMOVAL_FIX,
        removal=True,
    ),
    Rule(
        "REQUIRED_PROPERTY_DELETED",
        *_BF,
        _WARN,
        "a required property was deleted",
        "Readers on the old ontology require a value new objects no longer have, and consumers"
        " that name it break.",
        "Make it optional, deprecate it, and remove it in a later change.",
        removal=True,
    ),
    Rule(
        "DEPRECATED_PROPERTY_DELETED",
        *_NO,
        _WARN,
        "a deprecated property was deleted",
        "The property was already deprecated in the version compared against.",
        "Check that no consumer still reads it before the merge.",
    ),
    Rule(
        "DEPRECATED_REQUIRED_PROPERTY_DELETED",
        *_F,
        _WARN,
        "a deprecated, required property was deleted",
        "It was deprecated, but readers on the old ontology still require its value.",
        "Make it optional before removing it.",
    ),
    Rule(
        "PROPERTY_DEPRECATED",
        *_NO,
        _WARN,
        "a property was deprecated",
        "Nothing changes for data; consumers are warned that the property will go.",
        "Tell the property's consumers, then remove it in a later change.",
    ),
    Rule(
        "PROPERTY_UNDEPRECATED",
        *_NO,
        _INFO,
        "a property is no longer deprecated",
        "Nothing changes for data.",
        _ADD_SAFE,
    ),
    Rule(
        "PROPERTY_TYPE_WIDENED",
        *_F,
        _INFO,
        "a data type was widened",
        "Every old value is a valid new value, but new values may not fit readers on the old type.",
        "Update the readers first when the branch promises FORWARD or FULL.",
    ),
    Rule(
        "PROPERTY_TYPE_NARROWED",
        *_B,
        _WARN,
        "a data type was narrowed",
        "Old values may not fit the narrower type.",
        "Add a property of the new type, backfill it, then deprecate the old one.",
    ),
    Rule(
        "PROPERTY_TYPE_CHANGED",
        *_BF,
        _WARN,
        "a data type changed incompatibly",
        "Neither the old values fit the new type nor the new values the old one.",
        "Add a property of the new type, backfill it, then deprecate the old one.",
    ),
    Rule(
        "PROPERTY_MADE_REQUIRED",
        *_B,
        _WARN,
        "a property became required",
        "Old objects may have no value for it.",
        "Backfill every object first; then the change is safe in practice, and can be forced"
        " with a reason.",
    ),
    Rule(
        "PROPERTY_MADE_OPTIONAL",
        *_F,
        _INFO,
        "a property became optional",
        "New objects may lack a value readers on the old ontology require.",
        "Update the readers first when the branch promises FORWARD or FULL.",
    ),
    Rule(
        "PROPERTY_UNIQUE_ADDED",
        *_B,
        _WARN,
        "a property became unique",
        "Old objects may share values.",
        "Remove the duplicates first.",
    ),
    Rule(
        "PROPERTY_UNIQUE_REMOVED",
        *_F,
        _INFO,
        "a property is no longer unique",
        "New objects may share values readers on the old ontology expect to be unique.",
        "Update the readers first when the branch promises FORWARD or FULL.",
    ),
    Rule(
        "ENUM_VALUES_REMOVED",
        *_B,
        _WARN,
        "enum values were removed",
        "Old objects may hold the removed values.",
        "Migrate the objects holding them first.",
    ),
    Rule(
        "ENUM_VALUES_ADDED",
        *_F,
        _INFO,
        "enum values were added",
        "New objects may hold values readers on the old ontology do not know.",
        "Update the readers first when the branch promises FORWARD or FULL.",
    ),
    Rule(
        "ENUM_CONSTRAINT_ADDED",
        *_B,
        _WARN,
        "a free property was restricted to enum values",
        "Old objects may hold values outside the list.",
        "Migrate the objects to listed values first.",
    ),
    Rule(
        "ENUM_CONSTRAINT_REMOVED",
        *_F,
        _INFO,
        "a property is no longer restricted to enum values",
        "New objects may hold values readers on the old ontology do not know.",
        "Update the readers first when the branch promises FORWARD or FULL.",
    ),
    Rule(
        "SHARED_PROPERTY_LINK_CHANGED",
        *_NO,
        _INFO,
        "a property's shared property changed",
        "Values keep their type (validation checks it); only what the property is said to mean"
        " changes.",
        _ADD_SAFE,
    ),
    Rule(
        "PROPERTY_ORDER_CHANGED",
        *_NO,
        _INFO,
        "the display order of properties changed",
        "Order carries no meaning; properties are matched by name.",
        _ADD_SAFE,
    ),
    Rule(
        "ACTION_PARAMETER_ORDER_CHANGED",
        *_NO,
        _INFO,
        "the display order of parameters changed",
        "Order carries no meaning; parameters are matched by name.",
        _ADD_SAFE,
    ),
    Rule(
        "METADATA_CHANGED",
        *_NO,
        _INFO,
        "a display name, description or other metadata changed",
        "Only what people read changes.",
        _ADD_SAFE,
    ),
    Rule(
        "LINK_TYPE_ADDED",
        *_NO,
        _INFO,
        "a link type was added",
        "Old data holds no such links, and old readers ignore links they do not know.",
        _ADD_SAFE,
    ),
    Rule(
        "LINK_TYPE_DELETED",
        *_B,
        _WARN,
        "a link type was deleted",
        "Its links, and the consumers that traverse it by name, lose their definition.",
        "Migrate its consumers first, then force the change with a reason.",
        removal=True,
    ),
    Rule(
        "LINK_ENDPOINT_CHANGED",
        *_BF,
        _WARN,
        "a link type connects other object types",
        "Existing links join objects of the old types.",
        "Add a new link type, migrate the links, then delete the old one.",
    ),
    Rule(
        "LINK_CARDINALITY_NARROWED",
        *_B,
        _WARN,
        "a link type allows fewer links",
        "Old objects may hold more links than the new cardinality allows.",
        "Remove the surplus links first.",
    ),
    Rule(
        "LINK_CARDINALITY_WIDENED",
        *_F,
        _INFO,
        "a link type allows more links",
        "New objects may hold more links than readers on the old ontology expect.",
        "Update the readers first when the branch promises FORWARD or FULL.",
    ),
    Rule(
        "LINK_CARDINALITY_CHANGED",
        *_BF,
        _WARN,
        "a link type's cardinality changed incompatibly",
        "One side allows fewer links and the other more: neither version reads the other's"
        " data safely.",
        "Add a new link type, migrate the links, then delete the old one.",
    ),
    Rule(
        "INTERFACE_ADDED",
        *_NO,
        _INFO,
        "an interface was added",
        "No type implements it yet in old data.",
        _ADD_SAFE,
    ),
    Rule(
        "INTERFACE_DELETED",
        *_B,
        _WARN,
        "an interface was deleted",
        "Consumers that query objects through the interface break.",
        "Move those consumers to the object types first, then force the change with a reason.",
        removal=True,
    ),
    Rule(
        "INTERFACE_PROPERTY_ADDED",
        *_NO,
        _INFO,
        "an interface requires another property",
        "Every implementer already has the property (validation checks it).",
        _ADD_SAFE,
    ),
    Rule(
        "INTERFACE_PROPERTY_REMOVED",
        *_B,
        _WARN,
        "an interface property was removed",
        "Consumers that read the property through the interface break.",
        "Move those consumers to the implementers' own property first.",
        removal=True,
    ),
    Rule(
        "INTERFACE_EXTENDS_ADDED",
        *_NO,
        _INFO,
        "an interface extends another interface",
        "Its implementers already satisfy the parent (validation checks it).",
        _ADD_SAFE,
    ),
    Rule(
        "INTERFACE_EXTENDS_REMOVED",
        *_B,
        _WARN,
        "an interface no longer extends an interface",
        "Consumers that reach its implementers through the parent stop finding them.",
        "Move those consumers first.",
        removal=True,
    ),
    Rule(
        "SHARED_PROPERTY_ADDED",
        *_NO,
        _INFO,
        "a shared property was added",
        "Nothing uses it yet.",
        _ADD_SAFE,
    ),
    Rule(
        "SHARED_PROPERTY_DELETED",
        *_B,
        _WARN,
        "a shared property was deleted",
        "Consumers that find properties by the shared property lose them.",
        "Unlink the properties that implement it first.",
        removal=True,
    ),
    Rule(
        "ACTION_TYPE_ADDED",
        *_NO,
        _INFO,
        "an action type was added",
        "Nobody calls it yet.",
        _ADD_SAFE,
    ),
    Rule(
        "ACTION_TYPE_DELETED",
        *_B,
        _WARN,
        "an action type was deleted",
        "Its callers' calls are refused.",
        "Move the callers to another action first, then force the change with a reason.",
        removal=True,
    ),
    Rule(
        "ACTION_PARAMETER_ADDED",
        *_NO,
        _INFO,
        "an optional action parameter was added",
        "Old calls simply omit it.",
        _ADD_SAFE,
    ),
    Rule(
        "ACTION_PARAMETER_ADDED_REQUIRED",
        *_B,
        _WARN,
        "a required action parameter was added",
        "Calls made the old way lack it and are refused.",
        "Add it as optional, update every caller, then make it required.",
    ),
    Rule(
        "ACTION_PARAMETER_REMOVED",
        *_B,
        _WARN,
        "an action parameter was removed",
        "Callers that pass it name a parameter the action no longer has.",
        "Update the callers first, then force the change with a reason.",
        removal=True,
    ),
    Rule(
        "ACTION_REQUIRED_PARAMETER_REMOVED",
        *_BF,
        _WARN,
        "a required action parameter was removed",
        "Callers pass a parameter that is gone, and the old action needs it from new calls.",
        "Make it optional first, update the callers, then remove it.",
        removal=True,
    ),
    Rule(
        "ACTION_PARAMETER_TYPE_WIDENED",
        *_F,
        _INFO,
        "an action parameter's type was widened",
        "Every old call stays valid, but new calls may pass values the old action refuses.",
        "Update the action's callers and consumers together under FORWARD or FULL.",
    ),
    Rule(
        "ACTION_PARAMETER_TYPE_NARROWED",
        *_B,
        _WARN,
        "an action parameter's type was narrowed",
        "Old calls may pass values outside the narrower type.",
        "Update the callers first.",
    ),
    Rule(
        "ACTION_PARAMETER_TYPE_CHANGED",
        *_BF,
        _WARN,
        "an action parameter's type changed",
        "Old calls pass values of the old type.",
        "Add a parameter of the new type, move the callers, then remove the old one.",
    ),
    Rule(
        "ACTION_PARAMETER_MADE_REQUIRED",
        *_B,
        _WARN,
        "an action parameter became required",
        "Old calls may omit it.",
        "Update every caller to pass it first.",
    ),
    Rule(
        "ACTION_PARAMETER_MADE_OPTIONAL",
        *_F,
        _INFO,
        "an action parameter became optional",
        "New calls may omit a value the old action requires.",
        "Update the action's consumers first under FORWARD or FULL.",
    ),
    Rule(
        "ACTION_PERMISSION_CHANGED",
        *_NO,
        _WARN,
        "the permission to run an action changed",
        "No data changes, but other people may now run the action, or fewer.",
        "Check who holds the new permission.",
    ),
    Rule(
        "ACTION_RULES_CHANGED",
        *_NO,
        _WARN,
        "what an action does changed",
        "No data changes now, but later runs of the action write differently.",
        "Review the new rules with the action's owners.",
    ),
]
RULES: dict[str, Rule] = {rule.rule_id: rule for rule in _RULES}
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
    *,
    deprecations: Ontology | None = None,
) -> list[Finding]:
    """A finding for every change from ``old`` to ``new``, sorted by resource key.

    ``keys``, when given, are the only keys that may differ; only those are compared.
    ``deprecations`` is the version whose deprecation marks let a removal pass (``old``
    unless given): a check against an older release passes the newest one.
    """
    marks = old if deprecations is None else deprecations
    report = _Report(CompatibilityMode(mode), marks)
    candidates = set(old) | set(new) if keys is None else set(keys)
    candidates = {k for k in candidates if not is_data_key(k)}  # objects are data, not schema
    prefetch(old, candidates)
    prefetch(new, candidates)
    if marks is not old:
        prefetch(marks, candidates)
    for key in sorted(candidates):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        collection, api_name = split_key(key)
        if before is None:
            report.add(_ADDED[collection], key, f"{api_name} was added")
        elif after is None:
            rule = _DELETED[collection]
            if collection == OBJECT_TYPES and report.deprecated(key):
                rule = "DEPRECATED_OBJECT_TYPE_DELETED"
            report.add(rule, key, f"{api_name} was deleted")
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
    }[mode.direction]
    return Severity.BREAKING if breaking else rule.severity


def breaking_modes(rule: Rule) -> list[CompatibilityMode]:
    """The modes in which a finding of ``rule`` is BREAKING, in the enum's order."""
    return [mode for mode in CompatibilityMode if severity_of(rule, mode) is Severity.BREAKING]


def exempt(findings: Iterable[Finding], exemptions: Iterable[str]) -> list[Finding]:
    """The findings with the exempted rules' ones marked and never breaking (buf's ``except``)."""
    skip = frozenset(exemptions)
    return [
        replace(f, severity=f.rule.severity, exempted=True) if f.rule_id in skip else f
        for f in findings
    ]


class _Report:
    def __init__(self, mode: CompatibilityMode, marks: Ontology) -> None:
        self._severity = {rule_id: severity_of(rule, mode) for rule_id, rule in RULES.items()}
        self._marks = marks
        self.findings: list[Finding] = []

    def add(self, rule_id: str, path: str, message: str) -> None:
        self.findings.append(Finding(rule_id, self._severity[rule_id], path, message))

    def deprecated(self, key: str, prop: str | None = None) -> bool:
        """Whether the version of deprecation marks deprecates this object type or property."""
        resource = self._marks.get(key)
        if resource is None:
            return False
        if prop is None:
            return bool(resource.get("status") == Status.DEPRECATED)
        return bool(by_name(resource.get("properties")).get(prop, {}).get("deprecated"))


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
        report.add("ENUM_VALUES_REMOVED", f"{path}.enum_values", f"removed {quoted(removed)}")
    if added:
        report.add("ENUM_VALUES_ADDED", f"{path}.enum_values", f"added {quoted(added)}")


_FLAGS = {
    "required": ("PROPERTY_MADE_REQUIRED", "PROPERTY_MADE_OPTIONAL"),
    "unique": ("PROPERTY_UNIQUE_ADDED", "PROPERTY_UNIQUE_REMOVED"),
    "deprecated": ("PROPERTY_DEPRECATED", "PROPERTY_UNDEPRECATED"),
}
"""Flags absent when false (``deprecated`` is only stored when set)."""


def _property(report: _Report, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """One property (of an object type or an interface) changed.

    Called per changed property, so it looks at the changed fields only.
    """
    changed = _changed(old, new)
    if "data_type" in changed or "enum_values" in changed:
        _value_rules(report, path, old, new)
    for name in changed:
        if name in _FLAGS:
            before, after = bool(old.get(name)), bool(new.get(name))
            if before != after:
                made, unmade = _FLAGS[name]
                report.add(
                    made if after else unmade, f"{path}.{name}", f"{name}: {_change(before, after)}"
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
                if report.deprecated(key, name):
                    rule = f"DEPRECATED_{rule}"
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
        report.add(f"LINK_CARDINALITY_{change}", f"{key}.cardinality", _change(before, after))
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
                f"required: {_change(bool(param.get('required')), bool(now.get('required')))}",
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
