from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OntologyObject(_message.Message):
    __slots__ = ("object_type", "primary_key", "properties", "etag")
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    object_type: str
    primary_key: str
    properties: _struct_pb2.Struct
    etag: str
    def __init__(self, object_type: _Optional[str] = ..., primary_key: _Optional[str] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("link_type", "from_primary_key", "to_primary_key")
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FROM_PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    TO_PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    link_type: str
    from_primary_key: str
    to_primary_key: str
    def __init__(self, link_type: _Optional[str] = ..., from_primary_key: _Optional[str] = ..., to_primary_key: _Optional[str] = ...) -> None: ...

class GetObjectRequest(_message.Message):
    __slots__ = ("branch", "object_type", "primary_key", "revision")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: str
    primary_key: str
    revision: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[str] = ..., primary_key: _Optional[str] = ..., revision: _Optional[str] = ...) -> None: ...

class ListObjectsRequest(_message.Message):
    __slots__ = ("branch", "object_type", "revision", "filter", "order_by", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: str
    revision: str
    filter: str
    order_by: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[str] = ..., revision: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListObjectsResponse(_message.Message):
    __slots__ = ("objects", "next_page_token")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[OntologyObject]
    next_page_token: str
    def __init__(self, objects: _Optional[_Iterable[_Union[OntologyObject, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateObjectRequest(_message.Message):
    __slots__ = ("branch", "object_type", "object", "message")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: str
    object: OntologyObject
    message: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[str] = ..., object: _Optional[_Union[OntologyObject, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class UpdateObjectRequest(_message.Message):
    __slots__ = ("branch", "object_type", "primary_key", "object", "update_mask", "message")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: str
    primary_key: str
    object: OntologyObject
    update_mask: _field_mask_pb2.FieldMask
    message: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[str] = ..., primary_key: _Optional[str] = ..., object: _Optional[_Union[OntologyObject, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class DeleteObjectRequest(_message.Message):
    __slots__ = ("branch", "object_type", "primary_key", "etag", "delete_links", "message")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    DELETE_LINKS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: str
    primary_key: str
    etag: str
    delete_links: bool
    message: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[str] = ..., primary_key: _Optional[str] = ..., etag: _Optional[str] = ..., delete_links: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class ListLinkedObjectsRequest(_message.Message):
    __slots__ = ("branch", "object_type", "primary_key", "link_type", "revision", "page_size", "page_token")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    branch: str
    object_type: str
    primary_key: str
    link_type: str
    revision: str
    page_size: int
    page_token: str
    def __init__(self, branch: _Optional[str] = ..., object_type: _Optional[str] = ..., primary_key: _Optional[str] = ..., link_type: _Optional[str] = ..., revision: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class CreateLinkRequest(_message.Message):
    __slots__ = ("branch", "link_type", "link", "message")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    link_type: str
    link: Link
    message: str
    def __init__(self, branch: _Optional[str] = ..., link_type: _Optional[str] = ..., link: _Optional[_Union[Link, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class DeleteLinkRequest(_message.Message):
    __slots__ = ("branch", "link_type", "from_primary_key", "to_primary_key", "message")
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FROM_PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    TO_PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    branch: str
    link_type: str
    from_primary_key: str
    to_primary_key: str
    message: str
    def __init__(self, branch: _Optional[str] = ..., link_type: _Optional[str] = ..., from_primary_key: _Optional[str] = ..., to_primary_key: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
