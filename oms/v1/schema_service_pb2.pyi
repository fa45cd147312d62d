from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from oms.v1 import history_pb2 as _history_pb2
from oms.v1 import object_service_pb2 as _object_service_pb2
from oms.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetObjectTypeRequest(_message.Message):
    __slots__ = ("branch", "api_name", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    revision: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ListObjectTypesRequest(_message.Message):
    __slots__ = ("branch", "revision", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    revision: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., revision: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListObjectTypesResponse(_message.Message):
    __slots__ = ("object_types", "next_page_token")
    OBJECT_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    object_types: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ObjectType]
    next_page_token: str
    def __init__(self, object_types: _Optional[_Iterable[_Union[_resources_pb2.ObjectType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateObjectTypeRequest(_message.Message):
    __slots__ = ("branch", "object_type", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: _resources_pb2.ObjectType
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[_Union[_resources_pb2.ObjectType, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class UpdateObjectTypeRequest(_message.Message):
    __slots__ = ("branch", "object_type", "update_mask", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: _resources_pb2.ObjectType
    update_mask: _field_mask_pb2.FieldMask
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[_Union[_resources_pb2.ObjectType, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class DeleteObjectTypeRequest(_message.Message):
    __slots__ = ("branch", "api_name", "etag", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    etag: str
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., etag: _Optional[str] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class GetLinkTypeRequest(_message.Message):
    __slots__ = ("branch", "api_name", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    revision: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ListLinkTypesRequest(_message.Message):
    __slots__ = ("branch", "revision", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    revision: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., revision: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLinkTypesResponse(_message.Message):
    __slots__ = ("link_types", "next_page_token")
    LINK_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    link_types: _containers.RepeatedCompositeFieldContainer[_resources_pb2.LinkType]
    next_page_token: str
    def __init__(self, link_types: _Optional[_Iterable[_Union[_resources_pb2.LinkType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateLinkTypeRequest(_message.Message):
    __slots__ = ("branch", "link_type", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    link_type: _resources_pb2.LinkType
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., link_type: _Optional[_Union[_resources_pb2.LinkType, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class UpdateLinkTypeRequest(_message.Message):
    __slots__ = ("branch", "link_type", "update_mask", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    link_type: _resources_pb2.LinkType
    update_mask: _field_mask_pb2.FieldMask
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., link_type: _Optional[_Union[_resources_pb2.LinkType, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class DeleteLinkTypeRequest(_message.Message):
    __slots__ = ("branch", "api_name", "etag", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    etag: str
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., etag: _Optional[str] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class GetActionTypeRequest(_message.Message):
    __slots__ = ("branch", "api_name", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    revision: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ListActionTypesRequest(_message.Message):
    __slots__ = ("branch", "revision", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    revision: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., revision: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListActionTypesResponse(_message.Message):
    __slots__ = ("action_types", "next_page_token")
    ACTION_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    action_types: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ActionType]
    next_page_token: str
    def __init__(self, action_types: _Optional[_Iterable[_Union[_resources_pb2.ActionType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateActionTypeRequest(_message.Message):
    __slots__ = ("branch", "action_type", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    action_type: _resources_pb2.ActionType
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., action_type: _Optional[_Union[_resources_pb2.ActionType, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class UpdateActionTypeRequest(_message.Message):
    __slots__ = ("branch", "action_type", "update_mask", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    action_type: _resources_pb2.ActionType
    update_mask: _field_mask_pb2.FieldMask
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., action_type: _Optional[_Union[_resources_pb2.ActionType, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class DeleteActionTypeRequest(_message.Message):
    __slots__ = ("branch", "api_name", "etag", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    etag: str
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., etag: _Optional[str] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class GetInterfaceRequest(_message.Message):
    __slots__ = ("branch", "api_name", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    revision: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ListInterfacesRequest(_message.Message):
    __slots__ = ("branch", "revision", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    revision: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., revision: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInterfacesResponse(_message.Message):
    __slots__ = ("interfaces", "next_page_token")
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    interfaces: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Interface]
    next_page_token: str
    def __init__(self, interfaces: _Optional[_Iterable[_Union[_resources_pb2.Interface, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateInterfaceRequest(_message.Message):
    __slots__ = ("branch", "interface", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    interface: _resources_pb2.Interface
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., interface: _Optional[_Union[_resources_pb2.Interface, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class UpdateInterfaceRequest(_message.Message):
    __slots__ = ("branch", "interface", "update_mask", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    interface: _resources_pb2.Interface
    update_mask: _field_mask_pb2.FieldMask
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., interface: _Optional[_Union[_resources_pb2.Interface, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class DeleteInterfaceRequest(_message.Message):
    __slots__ = ("branch", "api_name", "etag", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    etag: str
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., etag: _Optional[str] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class GetSharedPropertyRequest(_message.Message):
    __slots__ = ("branch", "api_name", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    revision: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ListSharedPropertiesRequest(_message.Message):
    __slots__ = ("branch", "revision", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    revision: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., revision: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSharedPropertiesResponse(_message.Message):
    __slots__ = ("shared_properties", "next_page_token")
    SHARED_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shared_properties: _containers.RepeatedCompositeFieldContainer[_resources_pb2.SharedProperty]
    next_page_token: str
    def __init__(self, shared_properties: _Optional[_Iterable[_Union[_resources_pb2.SharedProperty, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateSharedPropertyRequest(_message.Message):
    __slots__ = ("branch", "shared_property", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SHARED_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    shared_property: _resources_pb2.SharedProperty
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., shared_property: _Optional[_Union[_resources_pb2.SharedProperty, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class UpdateSharedPropertyRequest(_message.Message):
    __slots__ = ("branch", "shared_property", "update_mask", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SHARED_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    shared_property: _resources_pb2.SharedProperty
    update_mask: _field_mask_pb2.FieldMask
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., shared_property: _Optional[_Union[_resources_pb2.SharedProperty, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class DeleteSharedPropertyRequest(_message.Message):
    __slots__ = ("branch", "api_name", "etag", "message", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    api_name: str
    etag: str
    message: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., api_name: _Optional[str] = ..., etag: _Optional[str] = ..., message: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("upsert", "delete", "object", "link", "etag")
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    upsert: _resources_pb2.Resource
    delete: str
    object: _object_service_pb2.OntologyObject
    link: _object_service_pb2.Link
    etag: str
    def __init__(self, upsert: _Optional[_Union[_resources_pb2.Resource, _Mapping]] = ..., delete: _Optional[str] = ..., object: _Optional[_Union[_object_service_pb2.OntologyObject, _Mapping]] = ..., link: _Optional[_Union[_object_service_pb2.Link, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CommitChangesRequest(_message.Message):
    __slots__ = ("branch", "changes", "message", "expected_head", "force", "force_reason")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_HEAD_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    FORCE_REASON_FIELD_NUMBER: _ClassVar[int]
    branch: str
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    message: str
    expected_head: str
    force: bool
    force_reason: str
    def __init__(self, branch: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., message: _Optional[str] = ..., expected_head: _Optional[str] = ..., force: _Optional[bool] = ..., force_reason: _Optional[str] = ...) -> None: ...
