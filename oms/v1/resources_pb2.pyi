from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BaseType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BASE_TYPE_UNSPECIFIED: _ClassVar[BaseType]
    BASE_TYPE_STRING: _ClassVar[BaseType]
    BASE_TYPE_TEXT: _ClassVar[BaseType]
    BASE_TYPE_INTEGER: _ClassVar[BaseType]
    BASE_TYPE_LONG: _ClassVar[BaseType]
    BASE_TYPE_DOUBLE: _ClassVar[BaseType]
    BASE_TYPE_DECIMAL: _ClassVar[BaseType]
    BASE_TYPE_BOOLEAN: _ClassVar[BaseType]
    BASE_TYPE_DATE: _ClassVar[BaseType]
    BASE_TYPE_TIMESTAMP: _ClassVar[BaseType]
    BASE_TYPE_JSON: _ClassVar[BaseType]
    BASE_TYPE_GEOPOINT: _ClassVar[BaseType]

class ObjectTypeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECT_TYPE_STATUS_UNSPECIFIED: _ClassVar[ObjectTypeStatus]
    OBJECT_TYPE_STATUS_ACTIVE: _ClassVar[ObjectTypeStatus]
    OBJECT_TYPE_STATUS_EXPERIMENTAL: _ClassVar[ObjectTypeStatus]
    OBJECT_TYPE_STATUS_DEPRECATED: _ClassVar[ObjectTypeStatus]

class Cardinality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARDINALITY_UNSPECIFIED: _ClassVar[Cardinality]
    CARDINALITY_ONE_TO_ONE: _ClassVar[Cardinality]
    CARDINALITY_ONE_TO_MANY: _ClassVar[Cardinality]
    CARDINALITY_MANY_TO_ONE: _ClassVar[Cardinality]
    CARDINALITY_MANY_TO_MANY: _ClassVar[Cardinality]

class ActionRuleKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_RULE_KIND_UNSPECIFIED: _ClassVar[ActionRuleKind]
    ACTION_RULE_KIND_CREATE_OBJECT: _ClassVar[ActionRuleKind]
    ACTION_RULE_KIND_MODIFY_OBJECT: _ClassVar[ActionRuleKind]
    ACTION_RULE_KIND_DELETE_OBJECT: _ClassVar[ActionRuleKind]
    ACTION_RULE_KIND_CREATE_LINK: _ClassVar[ActionRuleKind]
    ACTION_RULE_KIND_DELETE_LINK: _ClassVar[ActionRuleKind]
BASE_TYPE_UNSPECIFIED: BaseType
BASE_TYPE_STRING: BaseType
BASE_TYPE_TEXT: BaseType
BASE_TYPE_INTEGER: BaseType
BASE_TYPE_LONG: BaseType
BASE_TYPE_DOUBLE: BaseType
BASE_TYPE_DECIMAL: BaseType
BASE_TYPE_BOOLEAN: BaseType
BASE_TYPE_DATE: BaseType
BASE_TYPE_TIMESTAMP: BaseType
BASE_TYPE_JSON: BaseType
BASE_TYPE_GEOPOINT: BaseType
OBJECT_TYPE_STATUS_UNSPECIFIED: ObjectTypeStatus
OBJECT_TYPE_STATUS_ACTIVE: ObjectTypeStatus
OBJECT_TYPE_STATUS_EXPERIMENTAL: ObjectTypeStatus
OBJECT_TYPE_STATUS_DEPRECATED: ObjectTypeStatus
CARDINALITY_UNSPECIFIED: Cardinality
CARDINALITY_ONE_TO_ONE: Cardinality
CARDINALITY_ONE_TO_MANY: Cardinality
CARDINALITY_MANY_TO_ONE: Cardinality
CARDINALITY_MANY_TO_MANY: Cardinality
ACTION_RULE_KIND_UNSPECIFIED: ActionRuleKind
ACTION_RULE_KIND_CREATE_OBJECT: ActionRuleKind
ACTION_RULE_KIND_MODIFY_OBJECT: ActionRuleKind
ACTION_RULE_KIND_DELETE_OBJECT: ActionRuleKind
ACTION_RULE_KIND_CREATE_LINK: ActionRuleKind
ACTION_RULE_KIND_DELETE_LINK: ActionRuleKind

class DataType(_message.Message):
    __slots__ = ("base", "array")
    BASE_FIELD_NUMBER: _ClassVar[int]
    ARRAY_FIELD_NUMBER: _ClassVar[int]
    base: BaseType
    array: bool
    def __init__(self, base: _Optional[_Union[BaseType, str]] = ..., array: _Optional[bool] = ...) -> None: ...

class Property(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "data_type", "required", "unique", "enum_values", "shared_property", "deprecated")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    ENUM_VALUES_FIELD_NUMBER: _ClassVar[int]
    SHARED_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    DEPRECATED_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    data_type: DataType
    required: bool
    unique: bool
    enum_values: _containers.RepeatedScalarFieldContainer[str]
    shared_property: str
    deprecated: bool
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., data_type: _Optional[_Union[DataType, _Mapping]] = ..., required: _Optional[bool] = ..., unique: _Optional[bool] = ..., enum_values: _Optional[_Iterable[str]] = ..., shared_property: _Optional[str] = ..., deprecated: _Optional[bool] = ...) -> None: ...

class ObjectType(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "status", "primary_key", "title_property", "properties", "interfaces", "etag")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_KEY_FIELD_NUMBER: _ClassVar[int]
    TITLE_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    status: ObjectTypeStatus
    primary_key: str
    title_property: str
    properties: _containers.RepeatedCompositeFieldContainer[Property]
    interfaces: _containers.RepeatedScalarFieldContainer[str]
    etag: str
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[ObjectTypeStatus, str]] = ..., primary_key: _Optional[str] = ..., title_property: _Optional[str] = ..., properties: _Optional[_Iterable[_Union[Property, _Mapping]]] = ..., interfaces: _Optional[_Iterable[str]] = ..., etag: _Optional[str] = ...) -> None: ...

class LinkType(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "from_object_type", "to_object_type", "cardinality", "etag")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FROM_OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TO_OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CARDINALITY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    from_object_type: str
    to_object_type: str
    cardinality: Cardinality
    etag: str
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., from_object_type: _Optional[str] = ..., to_object_type: _Optional[str] = ..., cardinality: _Optional[_Union[Cardinality, str]] = ..., etag: _Optional[str] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "properties", "extends", "etag")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    properties: _containers.RepeatedCompositeFieldContainer[Property]
    extends: _containers.RepeatedScalarFieldContainer[str]
    etag: str
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., properties: _Optional[_Iterable[_Union[Property, _Mapping]]] = ..., extends: _Optional[_Iterable[str]] = ..., etag: _Optional[str] = ...) -> None: ...

class SharedProperty(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "data_type", "enum_values", "etag")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENUM_VALUES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    data_type: DataType
    enum_values: _containers.RepeatedScalarFieldContainer[str]
    etag: str
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., data_type: _Optional[_Union[DataType, _Mapping]] = ..., enum_values: _Optional[_Iterable[str]] = ..., etag: _Optional[str] = ...) -> None: ...

class ActionParameter(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "data_type", "object_type", "required")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    data_type: DataType
    object_type: str
    required: bool
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., data_type: _Optional[_Union[DataType, _Mapping]] = ..., object_type: _Optional[str] = ..., required: _Optional[bool] = ...) -> None: ...

class ActionRule(_message.Message):
    __slots__ = ("kind", "object_type", "link_type", "object_parameter", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_PARAMETER_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    kind: ActionRuleKind
    object_type: str
    link_type: str
    object_parameter: str
    values: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[_Union[ActionRuleKind, str]] = ..., object_type: _Optional[str] = ..., link_type: _Optional[str] = ..., object_parameter: _Optional[str] = ..., values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ActionType(_message.Message):
    __slots__ = ("api_name", "display_name", "description", "permission", "parameters", "rules", "etag", "submission_criteria")
    API_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_CRITERIA_FIELD_NUMBER: _ClassVar[int]
    api_name: str
    display_name: str
    description: str
    permission: str
    parameters: _containers.RepeatedCompositeFieldContainer[ActionParameter]
    rules: _containers.RepeatedCompositeFieldContainer[ActionRule]
    etag: str
    submission_criteria: _containers.RepeatedCompositeFieldContainer[SubmissionCriterion]
    def __init__(self, api_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., permission: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[ActionParameter, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[ActionRule, _Mapping]]] = ..., etag: _Optional[str] = ..., submission_criteria: _Optional[_Iterable[_Union[SubmissionCriterion, _Mapping]]] = ...) -> None: ...

class SubmissionCriterion(_message.Message):
    __slots__ = ("parameter", "property", "operator", "value", "caller_permission", "caller_role", "message")
    PARAMETER_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CALLER_PERMISSION_FIELD_NUMBER: _ClassVar[int]
    CALLER_ROLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    parameter: str
    property: str
    operator: str
    value: _struct_pb2.Value
    caller_permission: str
    caller_role: str
    message: str
    def __init__(self, parameter: _Optional[str] = ..., property: _Optional[str] = ..., operator: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., caller_permission: _Optional[str] = ..., caller_role: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("object_type", "link_type", "action_type", "interface", "shared_property")
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    LINK_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    SHARED_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    object_type: ObjectType
    link_type: LinkType
    action_type: ActionType
    interface: Interface
    shared_property: SharedProperty
    def __init__(self, object_type: _Optional[_Union[ObjectType, _Mapping]] = ..., link_type: _Optional[_Union[LinkType, _Mapping]] = ..., action_type: _Optional[_Union[ActionType, _Mapping]] = ..., interface: _Optional[_Union[Interface, _Mapping]] = ..., shared_property: _Optional[_Union[SharedProperty, _Mapping]] = ...) -> None: ...
