from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from oms.v1 import history_pb2 as _history_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MergeStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MERGE_STRATEGY_UNSPECIFIED: _ClassVar[MergeStrategy]
    MERGE_STRATEGY_MERGE_COMMIT: _ClassVar[MergeStrategy]
    MERGE_STRATEGY_SQUASH: _ClassVar[MergeStrategy]

class MergeOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MERGE_OUTCOME_UNSPECIFIED: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_UP_TO_DATE: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_FAST_FORWARD: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_MERGE_COMMIT: _ClassVar[MergeOutcome]
    MERGE_OUTCOME_SQUASH: _ClassVar[MergeOutcome]

class RebaseOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REBASE_OUTCOME_UNSPECIFIED: _ClassVar[RebaseOutcome]
    REBASE_OUTCOME_UP_TO_DATE: _ClassVar[RebaseOutcome]
    REBASE_OUTCOME_FAST_FORWARD: _ClassVar[RebaseOutcome]
    REBASE_OUTCOME_REBASED: _ClassVar[RebaseOutcome]
MERGE_STRATEGY_UNSPECIFIED: MergeStrategy
MERGE_STRATEGY_MERGE_COMMIT: MergeStrategy
MERGE_STRATEGY_SQUASH: MergeStrategy
MERGE_OUTCOME_UNSPECIFIED: MergeOutcome
MERGE_OUTCOME_UP_TO_DATE: MergeOutcome
MERGE_OUTCOME_FAST_FORWARD: MergeOutcome
MERGE_OUTCOME_MERGE_COMMIT: MergeOutcome
MERGE_OUTCOME_SQUASH: MergeOutcome
REBASE_OUTCOME_UNSPECIFIED: RebaseOutcome
REBASE_OUTCOME_UP_TO_DATE: RebaseOutcome
REBASE_OUTCOME_FAST_FORWARD: RebaseOutcome
REBASE_OUTCOME_REBASED: RebaseOutcome

class CreateBranchRequest(_message.Message):
    __slots__ = ("name", "source", "base_branch", "compatibility_mode")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    BASE_BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMPATIBILITY_MODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    base_branch: str
    compatibility_mode: _history_pb2.CompatibilityMode
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., base_branch: _Optional[str] = ..., compatibility_mode: _Optional[_Union[_history_pb2.CompatibilityMode, str]] = ...) -> None: ...

class GetBranchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListBranchesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBranchesResponse(_message.Message):
    __slots__ = ("branches", "next_page_token")
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branches: _containers.RepeatedCompositeFieldContainer[_history_pb2.Branch]
    next_page_token: str
    def __init__(self, branches: _Optional[_Iterable[_Union[_history_pb2.Branch, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateBranchRequest(_message.Message):
    __slots__ = ("branch", "update_mask", "reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    branch: _history_pb2.Branch
    update_mask: _field_mask_pb2.FieldMask
    reason: str
    def __init__(self, branch: _Optional[_Union[_history_pb2.Branch, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteBranchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListCommitsRequest(_message.Message):
    __slots__ = ("branch", "resource", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    resource: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., resource: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCommitsResponse(_message.Message):
    __slots__ = ("commits", "next_page_token")
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    commits: _containers.RepeatedCompositeFieldContainer[_history_pb2.Commit]
    next_page_token: str
    def __init__(self, commits: _Optional[_Iterable[_Union[_history_pb2.Commit, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCommitRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DiffRefsRequest(_message.Message):
    __slots__ = ("base", "head", "page_size", "page_token")
    BASE_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    base: str
    head: str
    page_size: int
    page_token: str
    def __init__(self, base: _Optional[str] = ..., head: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class DiffRefsResponse(_message.Message):
    __slots__ = ("base_commit", "head_commit", "changes", "next_page_token")
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    HEAD_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    base_commit: str
    head_commit: str
    changes: _containers.RepeatedCompositeFieldContainer[_history_pb2.ResourceChange]
    next_page_token: str
    def __init__(self, base_commit: _Optional[str] = ..., head_commit: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[_history_pb2.ResourceChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MergeBranchRequest(_message.Message):
    __slots__ = ("branch", "target", "strategy", "message", "force", "force_reason", "resolutions")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    branch: str
    target: str
    strategy: MergeStrategy
    message: str
    force: bool
    force_reason: str
    resolutions: _containers.RepeatedCompositeFieldContainer[_history_pb2.MergeResolution]
    def __init__(self, branch: _Optional[str] = ..., target: _Optional[str] = ..., strategy: _Optional[_Union[MergeStrategy, str]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ..., resolutions: _Optional[_Iterable[_Union[_history_pb2.MergeResolution, _Mapping]]] = ...) -> None: ...

class MergeBranchResponse(_message.Message):
    __slots__ = ("outcome", "commit", "findings")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    outcome: MergeOutcome
    commit: _history_pb2.Commit
    findings: _containers.RepeatedCompositeFieldContainer[_history_pb2.ValidationFinding]
    def __init__(self, outcome: _Optional[_Union[MergeOutcome, str]] = ..., commit: _Optional[_Union[_history_pb2.Commit, _Mapping]] = ..., findings: _Optional[_Iterable[_Union[_history_pb2.ValidationFinding, _Mapping]]] = ...) -> None: ...

class RebaseBranchRequest(_message.Message):
    __slots__ = ("branch", "onto", "message", "resolutions", "expected_head")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    ONTO_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_HEAD_FIELD_NUMBER: _ClassVar[int]
    branch: str
    onto: str
    message: str
    resolutions: _containers.RepeatedCompositeFieldContainer[_history_pb2.MergeResolution]
    expected_head: str
    def __init__(self, branch: _Optional[str] = ..., onto: _Optional[str] = ..., message: _Optional[str] = ..., resolutions: _Optional[_Iterable[_Union[_history_pb2.MergeResolution, _Mapping]]] = ..., expected_head: _Optional[str] = ...) -> None: ...

class RebaseBranchResponse(_message.Message):
    __slots__ = ("outcome", "commit", "onto_commit")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    ONTO_COMMIT_FIELD_NUMBER: _ClassVar[int]
    outcome: RebaseOutcome
    commit: _history_pb2.Commit
    onto_commit: str
    def __init__(self, outcome: _Optional[_Union[RebaseOutcome, str]] = ..., commit: _Optional[_Union[_history_pb2.Commit, _Mapping]] = ..., onto_commit: _Optional[str] = ...) -> None: ...

class RevertCommitRequest(_message.Message):
    __slots__ = ("branch", "commit", "message", "resolutions", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    commit: str
    message: str
    resolutions: _containers.RepeatedCompositeFieldContainer[_history_pb2.MergeResolution]
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., commit: _Optional[str] = ..., message: _Optional[str] = ..., resolutions: _Optional[_Iterable[_Union[_history_pb2.MergeResolution, _Mapping]]] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class ValidateBranchRequest(_message.Message):
    __slots__ = ("branch", "against", "mode")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    AGAINST_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    against: str
    mode: _history_pb2.CompatibilityMode
    def __init__(self, branch: _Optional[str] = ..., against: _Optional[str] = ..., mode: _Optional[_Union[_history_pb2.CompatibilityMode, str]] = ...) -> None: ...

class ListCompatibilityRulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCompatibilityRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[_history_pb2.CompatibilityRule]
    def __init__(self, rules: _Optional[_Iterable[_Union[_history_pb2.CompatibilityRule, _Mapping]]] = ...) -> None: ...

class ValidateBranchResponse(_message.Message):
    __slots__ = ("passed", "mode", "base_commit", "head_commit", "findings", "affected_objects")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    HEAD_COMMIT_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    passed: bool
    mode: _history_pb2.CompatibilityMode
    base_commit: str
    head_commit: str
    findings: _containers.RepeatedCompositeFieldContainer[_history_pb2.ValidationFinding]
    affected_objects: _containers.RepeatedCompositeFieldContainer[AffectedObjects]
    def __init__(self, passed: _Optional[bool] = ..., mode: _Optional[_Union[_history_pb2.CompatibilityMode, str]] = ..., base_commit: _Optional[str] = ..., head_commit: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[_history_pb2.ValidationFinding, _Mapping]]] = ..., affected_objects: _Optional[_Iterable[_Union[AffectedObjects, _Mapping]]] = ...) -> None: ...

class AffectedObjects(_message.Message):
    __slots__ = ("resource", "reason", "count", "examples", "detail")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    resource: str
    reason: str
    count: int
    examples: _containers.RepeatedScalarFieldContainer[str]
    detail: str
    def __init__(self, resource: _Optional[str] = ..., reason: _Optional[str] = ..., count: _Optional[int] = ..., examples: _Optional[_Iterable[str]] = ..., detail: _Optional[str] = ...) -> None: ...
