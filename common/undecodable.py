"""Requests whose bytes do not parse: which field is at fault, so the caller can be told.

protobuf refuses a whole message when one string field holds bytes that are not UTF-8 (the
transcoder passes percent-decoded path and query values through as they are), and says only
that *some* string was bad. Walking the wire format against the descriptor finds which one.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

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
