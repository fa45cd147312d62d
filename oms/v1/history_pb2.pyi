import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CompatibilityMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPATIBILITY_MODE_UNSPECIFIED: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_BACKWARD: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_FORWARD: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_FULL: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_NONE: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_BACKWARD_TRANSITIVE: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_FORWARD_TRANSITIVE: _ClassVar[CompatibilityMode]
    COMPATIBILITY_MODE_FULL_TRANSITIVE: _ClassVar[CompatibilityMode]

class ChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_TYPE_UNSPECIFIED: _ClassVar[ChangeType]
    CHANGE_TYPE_ADDED: _ClassVar[ChangeType]
    CHANGE_TYPE_MODIFIED: _ClassVar[ChangeType]
    CHANGE_TYPE_DELETED: _ClassVar[ChangeType]

class ConflictKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFLICT_KIND_UNSPECIFIED: _ClassVar[ConflictKind]
    CONFLICT_KIND_BOTH_MODIFIED: _ClassVar[ConflictKind]
    CONFLICT_KIND_MODIFIED_DELETED: _ClassVar[ConflictKind]
    CONFLICT_KIND_BOTH_ADDED: _ClassVar[ConflictKind]

class ResolutionChoice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_CHOICE_UNSPECIFIED: _ClassVar[ResolutionChoice]
    RESOLUTION_CHOICE_OURS: _ClassVar[ResolutionChoice]
    RESOLUTION_CHOICE_THEIRS: _ClassVar[ResolutionChoice]
    RESOLUTION_CHOICE_VALUE: _ClassVar[ResolutionChoice]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_BREAKING: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_INFO: _ClassVar[Severity]
COMPATIBILITY_MODE_UNSPECIFIED: CompatibilityMode
COMPATIBILITY_MODE_BACKWARD: CompatibilityMode
COMPATIBILITY_MODE_FORWARD: CompatibilityMode
COMPATIBILITY_MODE_FULL: CompatibilityMode
COMPATIBILITY_MODE_NONE: CompatibilityMode
COMPATIBILITY_MODE_BACKWARD_TRANSITIVE: CompatibilityMode
COMPATIBILITY_MODE_FORWARD_TRANSITIVE: CompatibilityMode
COMPATIBILITY_MODE_FULL_TRANSITIVE: CompatibilityMode
CHANGE_TYPE_UNSPECIFIED: ChangeType
CHANGE_TYPE_ADDED: ChangeType
CHANGE_TYPE_MODIFIED: ChangeType
CHANGE_TYPE_DELETED: ChangeType
CONFLICT_KIND_UNSPECIFIED: ConflictKind
CONFLICT_KIND_BOTH_MODIFIED: ConflictKind
CONFLICT_KIND_MODIFIED_DELETED: ConflictKind
CONFLICT_KIND_BOTH_ADDED: ConflictKind
RESOLUTION_CHOICE_UNSPECIFIED: ResolutionChoice
RESOLUTION_CHOICE_OURS: ResolutionChoice
RESOLUTION_CHOICE_THEIRS: ResolutionChoice
RESOLUTION_CHOICE_VALUE: ResolutionChoice
SEVERITY_UNSPECIFIED: Severity
SEVERITY_BREAKING: Severity
SEVERITY_WARNING: Severity
SEVERITY_INFO: Severity

class Branch(_message.Message):
    __slots__ = ("name", "head", "base_branch", "protected", "compatibility_mode", "creator", "create_time", "head_commit", "requires_proposal", "required_approvals", "allow_self_approval", "compatibility_exemptions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    BASE_BRANCH_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_FIELD_NUMBER: _ClassVar[int]
    COMPATIBILITY_MODE_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    HEAD_COMMIT_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SELF_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    COMPATIBILITY_EXEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    head: str
    base_branch: str
    protected: bool
    compatibility_mode: CompatibilityMode
    creator: str
    create_time: _timestamp_pb2.Timestamp
    head_commit: Commit
    requires_proposal: bool
    required_approvals: int
    allow_self_approval: bool
    compatibility_exemptions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., head: _Optional[str] = ..., base_branch: _Optional[str] = ..., protected: _Optional[bool] = ..., compatibility_mode: _Optional[_Union[CompatibilityMode, str]] = ..., creator: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., head_commit: _Optional[_Union[Commit, _Mapping]] = ..., requires_proposal: _Optional[bool] = ..., required_approvals: _Optional[int] = ..., allow_self_approval: _Optional[bool] = ..., compatibility_exemptions: _Optional[_Iterable[str]] = ...) -> None: ...

class CommitChange(_message.Message):
    __slots__ = ("resource", "change_type")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    resource: str
    change_type: ChangeType
    def __init__(self, resource: _Optional[str] = ..., change_type: _Optional[_Union[ChangeType, str]] = ...) -> None: ...

class Commit(_message.Message):
    __slots__ = ("id", "parents", "author", "message", "create_time", "forced", "force_reason", "changes", "force_approved_by", "change_count", "changes_truncated")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    FORCE_APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    parents: _containers.RepeatedScalarFieldContainer[str]
    author: str
    message: str
    create_time: _timestamp_pb2.Timestamp
    forced: bool
    force_reason: str
    changes: _containers.RepeatedCompositeFieldContainer[CommitChange]
    force_approved_by: _containers.RepeatedScalarFieldContainer[str]
    change_count: int
    changes_truncated: bool
    def __init__(self, id: _Optional[str] = ..., parents: _Optional[_Iterable[str]] = ..., author: _Optional[str] = ..., message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., forced: _Optional[bool] = ..., force_reason: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[CommitChange, _Mapping]]] = ..., force_approved_by: _Optional[_Iterable[str]] = ..., change_count: _Optional[int] = ..., changes_truncated: _Optional[bool] = ...) -> None: ...

class FieldChange(_message.Message):
    __slots__ = ("path", "old_value", "new_value")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    path: str
    old_value: _struct_pb2.Value
    new_value: _struct_pb2.Value
    def __init__(self, path: _Optional[str] = ..., old_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., new_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ResourceChange(_message.Message):
    __slots__ = ("resource", "change_type", "fields")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    resource: str
    change_type: ChangeType
    fields: _containers.RepeatedCompositeFieldContainer[FieldChange]
    def __init__(self, resource: _Optional[str] = ..., change_type: _Optional[_Union[ChangeType, str]] = ..., fields: _Optional[_Iterable[_Union[FieldChange, _Mapping]]] = ...) -> None: ...

class MergeConflict(_message.Message):
    __slots__ = ("resource", "path", "kind", "base", "ours", "theirs")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    OURS_FIELD_NUMBER: _ClassVar[int]
    THEIRS_FIELD_NUMBER: _ClassVar[int]
    resource: str
    path: str
    kind: ConflictKind
    base: _struct_pb2.Value
    ours: _struct_pb2.Value
    theirs: _struct_pb2.Value
    def __init__(self, resource: _Optional[str] = ..., path: _Optional[str] = ..., kind: _Optional[_Union[ConflictKind, str]] = ..., base: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., ours: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., theirs: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class MergeResolution(_message.Message):
    __slots__ = ("resource", "path", "choice", "value")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    resource: str
    path: str
    choice: ResolutionChoice
    value: _struct_pb2.Value
    def __init__(self, resource: _Optional[str] = ..., path: _Optional[str] = ..., choice: _Optional[_Union[ResolutionChoice, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ValidationFinding(_message.Message):
    __slots__ = ("rule_id", "severity", "path", "message", "reason", "fix", "against", "exempted")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    AGAINST_FIELD_NUMBER: _ClassVar[int]
    EXEMPTED_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    severity: Severity
    path: str
    message: str
    reason: str
    fix: str
    against: str
    exempted: bool
    def __init__(self, rule_id: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., path: _Optional[str] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ..., fix: _Optional[str] = ..., against: _Optional[str] = ..., exempted: _Optional[bool] = ...) -> None: ...

class CompatibilityRule(_message.Message):
    __slots__ = ("rule_id", "summary", "breaking_in", "severity", "reason", "fix", "schema_registry_difference")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    BREAKING_IN_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_REGISTRY_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    summary: str
    breaking_in: _containers.RepeatedScalarFieldContainer[CompatibilityMode]
    severity: Severity
    reason: str
    fix: str
    schema_registry_difference: str
    def __init__(self, rule_id: _Optional[str] = ..., summary: _Optional[str] = ..., breaking_in: _Optional[_Iterable[_Union[CompatibilityMode, str]]] = ..., severity: _Optional[_Union[Severity, str]] = ..., reason: _Optional[str] = ..., fix: _Optional[str] = ..., schema_registry_difference: _Optional[str] = ...) -> None: ...
