"""Translation between the ``oms.v1`` messages and the domain's plain dicts and records.

Proto field names equal the domain keys, so ``json_format`` does the work; only enum values
differ (buf wants them prefixed: ``OBJECT_TYPE_STATUS_ACTIVE`` <-> ``"ACTIVE"``, and base types
are lower case in the domain). An ``UNSPECIFIED`` enum value is an absent field, which
:func:`oms.model.normalize` fills with its default.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf import json_format, struct_pb2
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from common import errors, pages
from common.canonical import NOT_FINITE
from common.errors import FieldViolation
from common.times import to_timestamp
from oms import model
from oms.compat import Finding, Rule, breaking_modes
from oms.data import ActionResult, StoredLink, StoredObject
from oms.diff import FieldChange, ResourceChange
from oms.merge import Choice, Conflict, Resolution
from oms.model import Resource, canonical_key
from oms.objects import Affected
from oms.proposals import ProposalView
from oms.rules import BranchRules
from oms.service import MergeResult
from oms.store import BranchRecord, CommitChanges, TagRecord, ThreadEntry
from oms.v1 import (
    action_service_pb2,
    branch_service_pb2,
    history_pb2,
    object_service_pb2,
    proposal_service_pb2,
    resources_pb2,
    schema_service_pb2,
    tag_service_pb2,
)


class PageResponse(Protocol):
    """A list response: its page token, beside the repeated field ``Kind.plural`` names."""

    next_page_token: str


M = TypeVar("M", bound=Message)
L = TypeVar("L", bound=PageResponse)


@dataclass(frozen=True)
class Kind(Generic[M, L]):
    """One collection as the API spells it: its message, list response and field names."""

    collection: str
    message: type[M]
    list_response: type[L]
    field: str
    """The request field carrying one resource, e.g. ``object_type``."""
    plural: str
    """The response field carrying a page of them, e.g. ``object_types``."""


OBJECT_TYPE = Kind(
    model.OBJECT_TYPES,
    resources_pb2.ObjectType,
    schema_service_pb2.ListObjectTypesResponse,
    "object_type",
    "object_types",
)
LINK_TYPE = Kind(
    model.LINK_TYPES,
    resources_pb2.LinkType,
    schema_service_pb2.ListLinkTypesResponse,
    "link_type",
    "link_types",
)
ACTION_TYPE = Kind(
    model.ACTION_TYPES,
    resources_pb2.ActionType,
    schema_service_pb2.ListActionTypesResponse,
    "action_type",
    "action_types",
)
INTERFACE = Kind(
    model.INTERFACES,
    resources_pb2.Interface,
    schema_service_pb2.ListInterfacesResponse,
    "interface",
    "interfaces",
)
SHARED_PROPERTY = Kind(
    model.SHARED_PROPERTIES,
    resources_pb2.SharedProperty,
    schema_service_pb2.ListSharedPropertiesResponse,
    "shared_property",
    "shared_properties",
)
KINDS: Mapping[str, Kind[Any, Any]] = {
    kind.collection: kind
    for kind in (OBJECT_TYPE, LINK_TYPE, ACTION_TYPE, INTERFACE, SHARED_PROPERTY)
}
COLLECTION_OF_FIELD = {kind.field: kind.collection for kind in KINDS.values()}

_LOWER_CASE_ENUMS = frozenset({"oms.v1.BaseType"})
_ETAG = "etag"


def _prefix(enum: EnumDescriptor) -> str:
    return enum.values_by_number[0].name.removesuffix("UNSPECIFIED")


def enum_to_domain(enum: EnumDescriptor, name: str) -> str:
    """``OBJECT_TYPE_STATUS_ACTIVE`` -> ``ACTIVE``; ``..._UNSPECIFIED`` -> ``""``."""
    value = name.removeprefix(_prefix(enum))
    if value == "UNSPECIFIED":
        return ""
    return value.lower() if enum.full_name in _LOWER_CASE_ENUMS else value


def enum_to_proto(enum: EnumDescriptor, value: str) -> str | None:
    """The reverse of :func:`enum_to_domain`; ``None`` for an empty or unknown value."""
    name = _prefix(enum) + value.upper()
    return name if value and name in enum.values_by_name else None


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _convert(descriptor: Any, value: dict[str, Any], *, to_domain: bool) -> dict[str, Any]:
    """Rewrite the enum values of one JSON-shaped message in place, recursively."""
    for field in descriptor.fields:
        if field.name not in value:
            continue
        item = value[field.name]
        if field.enum_type is not None:
            if not isinstance(item, str):
                continue  # an unknown enum number: left for the checks to reject
            convert = enum_to_domain if to_domain else enum_to_proto
            converted = convert(field.enum_type, item)
            if converted:
                value[field.name] = converted
            else:
                del value[field.name]
        elif field.message_type is not None and not _is_map(field):
            items = item if isinstance(item, list) else [item]
            for sub in items:
                if isinstance(sub, dict):
                    _convert(field.message_type, sub, to_domain=to_domain)
            if item is None and not to_domain:
                del value[field.name]
    return value


def _as_json(message: Message, field: str, **options: Any) -> Any:
    """The JSON form of a request's ``field``, refusing NaN and Infinity where they are.

    JSON cannot hold them, and ``json_format`` refuses one in a ``Value``.
    """
    try:
        return json_format.MessageToDict(message, **options)
    except (ValueError, json_format.SerializeToJsonError):  # the latter wraps the former
        at = _non_finite(message, field) or field
        raise errors.invalid([FieldViolation(at, NOT_FINITE, "NOT_FINITE")]) from None


def _non_finite(message: Message, path: str) -> str | None:
    """The path of the first ``Value`` under ``message`` holding a non-finite number.

    A ``Struct`` is named down to its key (``object.properties.score``), as data violations
    name a property; what is inside that value is not.
    """
    if isinstance(message, struct_pb2.Value):
        return path if not _finite(message) else None
    if isinstance(message, struct_pb2.Struct):
        return next(
            (f"{path}.{k}" for k, v in sorted(message.fields.items()) if not _finite(v)), None
        )
    for field, value in message.ListFields():
        if field.message_type is None or _is_map(field):
            continue
        name = f"{path}.{field.name}" if path else field.name
        items = enumerate(value) if field.is_repeated else [(None, value)]
        for i, item in items:
            at = _non_finite(item, name if i is None else f"{name}[{i}]")
            if at:
                return at
    return None


def _finite(value: struct_pb2.Value) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return math.isfinite(value.number_value)
    if kind == "struct_value":
        return all(_finite(v) for v in value.struct_value.fields.values())
    if kind == "list_value":
        return all(_finite(v) for v in value.list_value.values)
    return True


def resource_to_domain(message: Message, field: str, *, explicit: bool = False) -> dict[str, Any]:
    """The fields of a resource message as a (not yet normalized) domain dict, without etag.

    With ``explicit``, top-level fields at their default value are present too (an update mask
    may name a field to clear it); the items inside a field are left to the defaults every
    write applies, so a PATCH of ``properties`` fills in a missing display name as Create does.
    """
    raw = _as_json(message, field, preserving_proto_field_name=True)
    if explicit:
        defaults = _as_json(
            message,
            field,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        for name, value in defaults.items():
            raw.setdefault(name, value)
    raw.pop(_ETAG, None)
    return _convert(message.DESCRIPTOR, raw, to_domain=True)


def resource_to_message(
    collection: str, resource: Resource, etag: str, message: Message | None = None
) -> Message:
    """A stored resource as its message, with its etag."""
    target = message if message is not None else KINDS[collection].message()
    raw = _convert(target.DESCRIPTOR, copy.deepcopy(resource), to_domain=False)
    raw[_ETAG] = etag
    json_format.ParseDict(raw, target, ignore_unknown_fields=True)
    return target


_SEGMENT = re.compile(r"(\w+)(\[[^\]]*\])?")


def _at_path(key: str, path: str, value: Any, *, to_domain: bool) -> Any:
    """A value at ``path`` of resource ``key`` in the domain's form or the API's JSON form.

    Paths are as diffs and conflicts name them; enum values are the only difference. A path
    the descriptors do not know (or a list order, ``#order``) is left as it is.
    """
    kind = KINDS.get(key.partition("/")[0])
    if kind is None or path.endswith("#order"):
        return value
    descriptor: Any = kind.message.DESCRIPTOR
    field: FieldDescriptor | None = None
    item = False
    for segment in path.split(".") if path else ():
        match = _SEGMENT.fullmatch(segment)
        if descriptor is None or match is None:
            return value
        field = descriptor.fields_by_name.get(match.group(1))
        if field is None:
            return value
        item = bool(match.group(2))
        descriptor = field.message_type
    value = copy.deepcopy(value)
    if descriptor is not None and not (field is not None and _is_map(field)):
        for sub in value if isinstance(value, list) and not item else [value]:
            if isinstance(sub, dict):
                _convert(descriptor, sub, to_domain=to_domain)
    elif field is not None and field.enum_type is not None:
        convert = enum_to_domain if to_domain else enum_to_proto
        names = value if isinstance(value, list) else [value]
        converted = [convert(field.enum_type, n) or n if isinstance(n, str) else n for n in names]
        value = converted if isinstance(value, list) else converted[0]
    return value


def to_value(value: Any) -> struct_pb2.Value:
    """Any JSON-like value as a ``google.protobuf.Value`` (``None`` -> null)."""
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)
    return message


def compatibility_mode_to_proto(mode: str) -> str | None:
    return enum_to_proto(history_pb2.CompatibilityMode.DESCRIPTOR, mode)


def _enum_name(enum: Any, value: str) -> str | None:
    """The proto name of a domain enum value, for message constructors (None: unspecified)."""
    return enum_to_proto(enum.DESCRIPTOR, value)


def commit_to_message(found: CommitChanges) -> history_pb2.Commit:
    commit = found.commit
    return history_pb2.Commit(
        id=commit.id,
        parents=commit.parents,
        author=commit.author,
        message=commit.message,
        create_time=to_timestamp(commit.time_ns),
        forced=commit.forced,
        force_reason=commit.force_reason,
        force_approved_by=commit.force_approved_by,
        changes=[
            history_pb2.CommitChange(
                resource=key, change_type=_enum_name(history_pb2.ChangeType, change)
            )
            for key, change in found.changes
        ],
        change_count=found.count,
        changes_truncated=found.count > len(found.changes),
    )


def branch_to_message(
    branch: BranchRecord, head: CommitChanges | None = None
) -> history_pb2.Branch:
    message = history_pb2.Branch(
        name=branch.name,
        head=branch.head,
        base_branch=branch.base_branch,
        protected=branch.protected,
        compatibility_mode=compatibility_mode_to_proto(branch.compatibility_mode),
        creator=branch.creator,
        create_time=to_timestamp(branch.created_ns),
        requires_proposal=branch.requires_proposal,
        required_approvals=branch.required_approvals,
        allow_self_approval=branch.allow_self_approval,
        compatibility_exemptions=branch.compatibility_exemptions,
    )
    if head is not None:
        message.head_commit.CopyFrom(commit_to_message(head))
    return message


def tag_to_message(tag: TagRecord, commit: CommitChanges | None = None) -> tag_service_pb2.Tag:
    message = tag_service_pb2.Tag(
        name=tag.name,
        commit=tag.commit,
        message=tag.message,
        creator=tag.creator,
        create_time=to_timestamp(tag.created_ns),
    )
    if commit is not None:
        message.target_commit.CopyFrom(commit_to_message(commit))
    return message


def _api_value(key: str, path: str, value: Any) -> struct_pb2.Value:
    return to_value(_at_path(key, path, value, to_domain=False))


def field_change_to_message(key: str, change: FieldChange) -> history_pb2.FieldChange:
    return history_pb2.FieldChange(
        path=change.path,
        old_value=_api_value(key, change.path, change.old),
        new_value=_api_value(key, change.path, change.new),
    )


def resource_change_to_message(change: ResourceChange) -> history_pb2.ResourceChange:
    return history_pb2.ResourceChange(
        resource=change.key,
        change_type=_enum_name(history_pb2.ChangeType, change.change_type),
        fields=[field_change_to_message(change.key, f) for f in change.fields],
    )


def conflict_to_message(conflict: Conflict) -> history_pb2.MergeConflict:
    """A conflict with its values in the API's JSON form, the form a resolution supplies."""
    key, path = conflict.key, conflict.path
    return history_pb2.MergeConflict(
        resource=key,
        path=path,
        kind=_enum_name(history_pb2.ConflictKind, conflict.kind),
        base=_api_value(key, path, conflict.base),
        ours=_api_value(key, path, conflict.ours),
        theirs=_api_value(key, path, conflict.theirs),
    )


_CHOICES = {
    history_pb2.RESOLUTION_CHOICE_OURS: Choice.OURS,
    history_pb2.RESOLUTION_CHOICE_THEIRS: Choice.THEIRS,
    history_pb2.RESOLUTION_CHOICE_VALUE: Choice.VALUE,
}


def resolutions_to_domain(
    resolutions: Sequence[history_pb2.MergeResolution],
) -> list[Resolution]:
    """Resolutions with their values in the domain's form; a missing choice is a violation."""
    missing = [
        FieldViolation(f"resolutions[{i}].choice", "required: OURS, THEIRS or VALUE", "REQUIRED")
        for i, r in enumerate(resolutions)
        if r.choice not in _CHOICES
    ]
    if missing:
        raise errors.invalid(missing)
    return [
        _resolution(canonical_key(r.resource), r, f"resolutions[{i}].value")
        for i, r in enumerate(resolutions)
    ]


def _resolution(key: str, given: history_pb2.MergeResolution, field: str) -> Resolution:
    """One resolution of ``key`` (the request's resource, in the current spelling)."""
    value = (
        _at_path(key, given.path, _as_json(given.value, field), to_domain=True)
        if given.HasField("value")
        else None
    )
    return Resolution(key, given.path, _CHOICES[given.choice], value)


def finding_to_message(finding: Finding) -> history_pb2.ValidationFinding:
    return history_pb2.ValidationFinding(
        rule_id=finding.rule_id,
        severity=_enum_name(history_pb2.Severity, finding.severity),
        path=finding.path,
        message=finding.message,
        reason=finding.rule.why,
        fix=finding.rule.fix,
        against=finding.against,
        exempted=finding.exempted,
    )


def rule_to_message(rule: Rule) -> history_pb2.CompatibilityRule:
    return history_pb2.CompatibilityRule(
        rule_id=rule.rule_id,
        summary=rule.summary,
        breaking_in=[
            name for mode in breaking_modes(rule) if (name := compatibility_mode_to_proto(mode))
        ],
        severity=_enum_name(history_pb2.Severity, rule.severity),
        reason=rule.why,
        fix=rule.fix,
        schema_registry_difference="REMOVAL_PROTECTION" if rule.removal else "",
    )


def merge_result_to_message(
    result: MergeResult, changes: CommitChanges
) -> branch_service_pb2.MergeBranchResponse:
    """``changes`` are those of ``result.commit``, as every commit message lists them."""
    return branch_service_pb2.MergeBranchResponse(
        outcome=f"MERGE_OUTCOME_{result.outcome.value}",
        commit=commit_to_message(changes),
        findings=[finding_to_message(f) for f in result.findings],
    )


def rules_to_message(rules: BranchRules) -> proposal_service_pb2.ProposalRules:
    return proposal_service_pb2.ProposalRules(
        protected=rules.protected,
        compatibility_mode=compatibility_mode_to_proto(rules.compatibility_mode),
        required_approvals=rules.required_approvals,
        allow_self_approval=rules.allow_self_approval,
    )


def proposal_to_message(view: ProposalView) -> proposal_service_pb2.Proposal:
    record = view.record
    message = proposal_service_pb2.Proposal(
        id=record.id,
        title=record.title,
        description=record.description,
        source=record.source,
        target=record.target,
        author=record.author,
        reviewers=record.reviewers,
        state=f"PROPOSAL_STATE_{view.state}",
        approved_by=view.approved_by,
        rules=rules_to_message(view.rules),
        validated_rules=rules_to_message(view.validated),
        merge_commit=record.merge_commit,
        create_time=to_timestamp(record.created_ns),
        update_time=to_timestamp(record.updated_ns),
        etag=record.etag,
    )
    if view.checked is not None:
        checked = view.checked
        changes = [resource_change_to_message(c) for c in checked.changes]
        kept = pages.fitting(changes)
        message.changes.extend(changes[:kept])
        message.changes_truncated = checked.more or kept < len(changes)
        message.validation.CopyFrom(
            proposal_service_pb2.ProposalValidation(
                passed=checked.passed,
                base_commit=checked.base.id,
                source_head=checked.source_head,
                target_head=checked.target_head,
                findings=[finding_to_message(f) for f in checked.comparison.findings],
            )
        )
    return message


def comment_to_message(entry: ThreadEntry) -> proposal_service_pb2.Comment:
    return proposal_service_pb2.Comment(
        number=entry.number,
        kind=f"COMMENT_KIND_{entry.kind}",
        author=entry.author,
        body=entry.body,
        source_head=entry.source_head,
        create_time=to_timestamp(entry.time_ns),
    )


def detail_to_message(detail: object) -> Message:
    """The message of a domain object an OMS error carries (a conflict, a breaking finding)."""
    if isinstance(detail, Conflict):
        return conflict_to_message(detail)
    if isinstance(detail, Finding):
        return finding_to_message(detail)
    raise TypeError(f"no message describes {type(detail).__name__}")


def _json_number(value: Any) -> Any:
    """A ``Struct`` holds numbers as doubles: a whole one is an integer in the domain."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return value


def values_to_domain(properties: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """Property values (or action parameters) from the request's ``field``.

    Whole numbers become integers.
    """
    return {k: _json_number(v) for k, v in _as_json(properties, field).items()}


def object_to_message(stored: StoredObject) -> object_service_pb2.OntologyObject:
    message = object_service_pb2.OntologyObject(
        object_type=stored.object_type, primary_key=stored.primary_key, etag=stored.etag
    )
    message.properties.update(stored.values)
    return message


def link_to_message(stored: StoredLink) -> object_service_pb2.Link:
    return object_service_pb2.Link(
        link_type=stored.link_type, from_primary_key=stored.from_pk, to_primary_key=stored.to_pk
    )


def action_result_to_message(result: ActionResult) -> action_service_pb2.ExecuteActionResponse:
    return action_service_pb2.ExecuteActionResponse(
        commit=result.commit,
        edits=[
            action_service_pb2.ActionEdit(
                resource=e.key,
                change_type=_enum_name(history_pb2.ChangeType, e.change),
                before=to_value(e.before),
                after=to_value(e.after),
            )
            for e in result.edits
        ],
    )


def affected_to_message(affected: Affected) -> branch_service_pb2.AffectedObjects:
    return branch_service_pb2.AffectedObjects(
        resource=affected.resource,
        reason=affected.reason,
        count=affected.count,
        examples=affected.examples,
        detail=affected.detail,
    )
