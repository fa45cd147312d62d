import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from oms.v1 import branch_service_pb2 as _branch_service_pb2
from oms.v1 import history_pb2 as _history_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProposalState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPOSAL_STATE_UNSPECIFIED: _ClassVar[ProposalState]
    PROPOSAL_STATE_OPEN: _ClassVar[ProposalState]
    PROPOSAL_STATE_APPROVED: _ClassVar[ProposalState]
    PROPOSAL_STATE_MERGED: _ClassVar[ProposalState]
    PROPOSAL_STATE_CLOSED: _ClassVar[ProposalState]

class CommentKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMENT_KIND_UNSPECIFIED: _ClassVar[CommentKind]
    COMMENT_KIND_COMMENT: _ClassVar[CommentKind]
    COMMENT_KIND_APPROVE: _ClassVar[CommentKind]
    COMMENT_KIND_REQUEST_CHANGES: _ClassVar[CommentKind]

class ReviewVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_VERDICT_UNSPECIFIED: _ClassVar[ReviewVerdict]
    REVIEW_VERDICT_APPROVE: _ClassVar[ReviewVerdict]
    REVIEW_VERDICT_REQUEST_CHANGES: _ClassVar[ReviewVerdict]
PROPOSAL_STATE_UNSPECIFIED: ProposalState
PROPOSAL_STATE_OPEN: ProposalState
PROPOSAL_STATE_APPROVED: ProposalState
PROPOSAL_STATE_MERGED: ProposalState
PROPOSAL_STATE_CLOSED: ProposalState
COMMENT_KIND_UNSPECIFIED: CommentKind
COMMENT_KIND_COMMENT: CommentKind
COMMENT_KIND_APPROVE: CommentKind
COMMENT_KIND_REQUEST_CHANGES: CommentKind
REVIEW_VERDICT_UNSPECIFIED: ReviewVerdict
REVIEW_VERDICT_APPROVE: ReviewVerdict
REVIEW_VERDICT_REQUEST_CHANGES: ReviewVerdict

class ProposalRules(_message.Message):
    __slots__ = ("protected", "compatibility_mode", "required_approvals", "allow_self_approval")
    PROTECTED_FIELD_NUMBER: _ClassVar[int]
    COMPATIBILITY_MODE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SELF_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    protected: bool
    compatibility_mode: _history_pb2.CompatibilityMode
    required_approvals: int
    allow_self_approval: bool
    def __init__(self, protected: _Optional[bool] = ..., compatibility_mode: _Optional[_Union[_history_pb2.CompatibilityMode, str]] = ..., required_approvals: _Optional[int] = ..., allow_self_approval: _Optional[bool] = ...) -> None: ...

class ProposalValidation(_message.Message):
    __slots__ = ("passed", "base_commit", "source_head", "target_head", "findings")
    PASSED_FIELD_NUMBER: _ClassVar[int]
    BASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HEAD_FIELD_NUMBER: _ClassVar[int]
    TARGET_HEAD_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    passed: bool
    base_commit: str
    source_head: str
    target_head: str
    findings: _containers.RepeatedCompositeFieldContainer[_history_pb2.ValidationFinding]
    def __init__(self, passed: _Optional[bool] = ..., base_commit: _Optional[str] = ..., source_head: _Optional[str] = ..., target_head: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[_history_pb2.ValidationFinding, _Mapping]]] = ...) -> None: ...

class Proposal(_message.Message):
    __slots__ = ("id", "title", "description", "source", "target", "author", "reviewers", "state", "approved_by", "rules", "validated_rules", "changes", "validation", "merge_commit", "create_time", "update_time", "etag", "changes_truncated")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    REVIEWERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    VALIDATED_RULES_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    MERGE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CHANGES_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    description: str
    source: str
    target: str
    author: str
    reviewers: _containers.RepeatedScalarFieldContainer[str]
    state: ProposalState
    approved_by: _containers.RepeatedScalarFieldContainer[str]
    rules: ProposalRules
    validated_rules: ProposalRules
    changes: _containers.RepeatedCompositeFieldContainer[_history_pb2.ResourceChange]
    validation: ProposalValidation
    merge_commit: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    changes_truncated: bool
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., author: _Optional[str] = ..., reviewers: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[ProposalState, str]] = ..., approved_by: _Optional[_Iterable[str]] = ..., rules: _Optional[_Union[ProposalRules, _Mapping]] = ..., validated_rules: _Optional[_Union[ProposalRules, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[_history_pb2.ResourceChange, _Mapping]]] = ..., validation: _Optional[_Union[ProposalValidation, _Mapping]] = ..., merge_commit: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., changes_truncated: _Optional[bool] = ...) -> None: ...

class Comment(_message.Message):
    __slots__ = ("number", "kind", "author", "body", "source_head", "create_time")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HEAD_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    number: int
    kind: CommentKind
    author: str
    body: str
    source_head: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, number: _Optional[int] = ..., kind: _Optional[_Union[CommentKind, str]] = ..., author: _Optional[str] = ..., body: _Optional[str] = ..., source_head: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateProposalRequest(_message.Message):
    __slots__ = ("proposal",)
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    proposal: Proposal
    def __init__(self, proposal: _Optional[_Union[Proposal, _Mapping]] = ...) -> None: ...

class GetProposalRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListProposalsRequest(_message.Message):
    __slots__ = ("state", "target", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: ProposalState
    target: str
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[ProposalState, str]] = ..., target: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProposalsResponse(_message.Message):
    __slots__ = ("proposals", "next_page_token")
    PROPOSALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    proposals: _containers.RepeatedCompositeFieldContainer[Proposal]
    next_page_token: str
    def __init__(self, proposals: _Optional[_Iterable[_Union[Proposal, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateProposalRequest(_message.Message):
    __slots__ = ("proposal", "update_mask")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    proposal: Proposal
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, proposal: _Optional[_Union[Proposal, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class CloseProposalRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ReviewProposalRequest(_message.Message):
    __slots__ = ("id", "verdict", "comment", "source_head")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HEAD_FIELD_NUMBER: _ClassVar[int]
    id: str
    verdict: ReviewVerdict
    comment: str
    source_head: str
    def __init__(self, id: _Optional[str] = ..., verdict: _Optional[_Union[ReviewVerdict, str]] = ..., comment: _Optional[str] = ..., source_head: _Optional[str] = ...) -> None: ...

class AddCommentRequest(_message.Message):
    __slots__ = ("id", "body")
    ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    id: str
    body: str
    def __init__(self, id: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class ListCommentsRequest(_message.Message):
    __slots__ = ("id", "page_size", "page_token")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    page_size: int
    page_token: str
    def __init__(self, id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCommentsResponse(_message.Message):
    __slots__ = ("comments", "next_page_token")
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    comments: _containers.RepeatedCompositeFieldContainer[Comment]
    next_page_token: str
    def __init__(self, comments: _Optional[_Iterable[_Union[Comment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevalidateProposalRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class MergeProposalRequest(_message.Message):
    __slots__ = ("id", "strategy", "message", "force", "force_reason", "resolutions")
    ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    strategy: _branch_service_pb2.MergeStrategy
    message: str
    force: bool
    force_reason: str
    resolutions: _containers.RepeatedCompositeFieldContainer[_history_pb2.MergeResolution]
    def __init__(self, id: _Optional[str] = ..., strategy: _Optional[_Union[_branch_service_pb2.MergeStrategy, str]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ..., resolutions: _Optional[_Iterable[_Union[_history_pb2.MergeResolution, _Mapping]]] = ...) -> None: ...

class MergeProposalResponse(_message.Message):
    __slots__ = ("proposal", "merge")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    proposal: Proposal
    merge: _branch_service_pb2.MergeBranchResponse
    def __init__(self, proposal: _Optional[_Union[Proposal, _Mapping]] = ..., merge: _Optional[_Union[_branch_service_pb2.MergeBranchResponse, _Mapping]] = ...) -> None: ...
