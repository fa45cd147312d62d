"""Requests refused before a servicer sees them, with the field at fault named.

protobuf refuses a whole message when one string field holds bytes that are not UTF-8 (the
transcoder passes percent-decoded path and query values through as they are), and says only
that *some* string was bad. Walking the wire format against the descriptor finds which one.

A string holding U+0000 parses, but PostgreSQL cannot store it in a text column (psycopg
refuses it), so the same request would be kept on SQLite and fail on PostgreSQL. No string
field of any request may hold one; JSON values (``Struct``, ``Value``) may, since their text
is stored escaped.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from common.errors import FieldViolation, InvalidArgument, invalid

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def invalid_utf8_field(descriptor: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """The path (``events[2].id``) of the first string field that is not UTF-8, if any."""
    seen: dict[int, int] = {}
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == _VARINT:
                _, pos = _varint(data, pos)
                continue
            if wire_type in (_FIXED64, _FIXED32):
                pos += 8 if wire_type == _FIXED64 else 4
                continue
            if wire_type != _LENGTH_DELIMITED:
                return None  # groups: never used by this mesh's APIs
            length, pos = _varint(data, pos)
            chunk, pos = data[pos : pos + length], pos + length
            field = descriptor.fields_by_number.get(number)
            if field is None:
                continue
            index = seen.get(number, 0)
            seen[number] = index + 1
            path = f"{prefix}{field.name}"
            if field.is_repeated and not _is_map(field):
                path += f"[{index}]"
            if field.type == FieldDescriptor.TYPE_STRING:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return path
            elif field.message_type is not None:
                found = invalid_utf8_field(field.message_type, chunk, path + ".")
                if found is not None:
                    return found
    except (IndexError, ValueError):
        return None
    return None


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


_JSON_VALUES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


def nul_field(message: Message, data: bytes) -> str | None:
    """The path of the first string field of ``message``, parsed from ``data``, holding U+0000.

    Such a string encodes to a zero byte, but so do a JSON value's doubles, which the ingest
    path meets in nearly every message. So the bytes are read again as the type's strings
    alone (:func:`_strings_of`), in C; only when those hold a zero is the message walked.
    """
    if b"\x00" not in data:
        return None
    strings = _strings_of(message.DESCRIPTOR)()
    strings.ParseFromString(data)
    strings.DiscardUnknownFields()
    if b"\x00" not in strings.SerializeToString():
        return None
    return _walk(message, "")


def _walk(message: Message, prefix: str) -> str | None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            items = enumerate(value) if field.is_repeated else ((None, value),)
            for i, text in items:
                if "\x00" in text:
                    return path if i is None else f"{path}[{i}]"
        elif _is_map(field):
            for key, item in value.items():
                if "\x00" in str(key) or (isinstance(item, str) and "\x00" in item):
                    return path
        elif field.message_type is not None and _holds_strings(field.message_type):
            subs = enumerate(value) if field.is_repeated else ((None, value),)
            for i, sub in subs:
                found = _walk(sub, f"{path}." if i is None else f"{path}[{i}].")
                if found is not None:
                    return found
    return None


@functools.cache
def _strings_of(descriptor: Descriptor) -> type[Message]:
    """A type with ``descriptor``'s field numbers that keeps only its strings.

    The messages that lead to strings are kept too, so its encoding has a zero byte only
    where a string has one, or where a string or message is present and empty.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="strings.proto", package="strings", syntax="proto3"
    )
    pending, done = [descriptor], set()
    while pending:
        current = pending.pop()
        if current.full_name in done:
            continue
        done.add(current.full_name)
        entry = current.GetOptions().map_entry
        kept = file.message_type.add(name=_mirror(current))
        kept.options.map_entry = entry
        for field in current.fields:
            shape: dict[str, Any] = {"name": field.name, "number": field.number}
            if field.is_repeated:
                shape["label"] = FieldDescriptor.LABEL_REPEATED
            if field.message_type is not None and _holds_strings(field.message_type):
                pending.append(field.message_type)
                kept.field.add(
                    type=FieldDescriptor.TYPE_MESSAGE,
                    type_name=f".strings.{_mirror(field.message_type)}",
                    **shape,
                )
            elif field.type == FieldDescriptor.TYPE_STRING:
                kept.field.add(type=field.type, **shape)
            elif entry:  # an entry keeps its value, as a type of the same wire format
                kept.field.add(type=_ALIKE.get(field.type, field.type), **shape)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"strings.{_mirror(descriptor)}")
    )


_ALIKE = {
    FieldDescriptor.TYPE_ENUM: FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_MESSAGE: FieldDescriptor.TYPE_BYTES,
}
"""Types that name another type, as ones of the same wire format that do not."""


def _mirror(descriptor: Descriptor) -> str:
    return descriptor.full_name.replace(".", "_")


@functools.cache
def _holds_strings(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold a string outside JSON values."""
    return _reaches_strings(descriptor, frozenset())


def _reaches_strings(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in _JSON_VALUES or descriptor.full_name in seen:
        return False
    inner = seen | {descriptor.full_name}
    return any(
        f.type == FieldDescriptor.TYPE_STRING
        or (f.message_type is not None and _reaches_strings(f.message_type, inner))
        for f in descriptor.fields
    )


def nul_character(field: str) -> InvalidArgument:
    """The error for a request whose ``field`` holds U+0000."""
    return invalid(
        [FieldViolation(field, "must not contain the character U+0000", "INVALID_CHARACTERS")],
        f"{field} must not contain the character U+0000",
    )


def undecodable(descriptor: Descriptor | None, data: bytes) -> InvalidArgument:
    """The error for request bytes that do not parse as ``descriptor``'s message."""
    field = invalid_utf8_field(descriptor, data) if descriptor is not None else None
    if field is not None:
        return invalid(
            [FieldViolation(field, "is not valid UTF-8", "INVALID_UTF8")],
            f"{field} is not valid UTF-8",
        )
    name = descriptor.full_name if descriptor is not None else "the request message"
    return invalid(
        [FieldViolation("request", f"cannot be parsed as {name}", "MALFORMED")],
        f"the request cannot be parsed as {name}",
    )
