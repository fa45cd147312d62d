from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from oms.v1 import history_pb2 as _history_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecuteActionRequest(_message.Message):
    __slots__ = ("branch", "action_type", "parameters", "validate_only")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    branch: str
    action_type: str
    parameters: _struct_pb2.Struct
    validate_only: bool
    def __init__(self, branch: _Optional[str] = ..., action_type: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class ActionEdit(_message.Message):
    __slots__ = ("resource", "change_type", "before", "after")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    resource: str
    change_type: _history_pb2.ChangeType
    before: _struct_pb2.Value
    after: _struct_pb2.Value
    def __init__(self, resource: _Optional[str] = ..., change_type: _Optional[_Union[_history_pb2.ChangeType, str]] = ..., before: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., after: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ExecuteActionResponse(_message.Message):
    __slots__ = ("commit", "edits")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    commit: str
    edits: _containers.RepeatedCompositeFieldContainer[ActionEdit]
    def __init__(self, commit: _Optional[str] = ..., edits: _Optional[_Iterable[_Union[ActionEdit, _Mapping]]] = ...) -> None: ...
