"""The optional CloudEvents 1.0 attributes and the distributed-tracing extension, checked.

``datacontenttype`` is an RFC 2046 media type, ``dataschema`` an absolute URI (RFC 3986), and
``traceparent``/``tracestate`` the W3C Trace Context headers the CloudEvents distributed-tracing
extension carries. Each is optional; when present it must be well formed, because a log that
keeps what it cannot parse would hand the problem to every reader.
"""

from __future__ import annotations

import re

from common.errors import FieldViolation
from common.tracing import valid_traceparent

SPEC_VERSION = "1.0"
"""The one CloudEvents version the log accepts; an event that names none is 1.0."""
MAX_DATACONTENTTYPE = 256
MAX_DATASCHEMA = 2048
MAX_TRACESTATE_MEMBERS = 32

_MEDIA_TOKEN = r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+"  # noqa: S105 - a grammar, not a secret
"""RFC 2045 ``token``: printable ASCII but space and the ``tspecials``."""
_QUOTED = r'"(?:[^"\\\r\n]|\\.)*"'
MEDIA_TYPE = re.compile(
    rf"{_MEDIA_TOKEN}/{_MEDIA_TOKEN}"
    rf"(?:[ \t]*;[ \t]*{_MEDIA_TOKEN}=(?:{_MEDIA_TOKEN}|{_QUOTED}))*[ \t]*",
    re.ASCII,
)
URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
)
"""An absolute URI: a scheme, then only characters RFC 3986 allows, ``%`` only as an escape."""
_HEX = "[0-9a-f]"
_KEY = r"[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
TRACESTATE_MEMBER = re.compile(rf"(?:{_KEY})=(?:{_VALUE})", re.ASCII)


def check_attributes(
    violations: list[FieldViolation],
    prefix: str,
    *,
    specversion: str,
    datacontenttype: str,
    dataschema: str,
    traceparent: str,
    tracestate: str,
) -> None:
    """Append a violation, under ``prefix``, for each attribute that is present and malformed."""
    if specversion and specversion != SPEC_VERSION:
        violations.append(
            FieldViolation(
                f"{prefix}.specversion",
                f"must be {SPEC_VERSION}, the only CloudEvents version this log accepts",
                "UNSUPPORTED_VERSION",
            )
        )
    if datacontenttype and (
        len(datacontenttype) > MAX_DATACONTENTTYPE or not MEDIA_TYPE.fullmatch(datacontenttype)
    ):
        violations.append(
            FieldViolation(
                f"{prefix}.datacontenttype",
                f"must be a media type (RFC 2046) such as application/json, at most "
                f"{MAX_DATACONTENTTYPE} characters",
                "INVALID_FORMAT",
            )
        )
    if dataschema and (len(dataschema) > MAX_DATASCHEMA or not URI.fullmatch(dataschema)):
        violations.append(
            FieldViolation(
                f"{prefix}.dataschema",
                f"must be an absolute URI (RFC 3986), at most {MAX_DATASCHEMA} characters",
                "INVALID_FORMAT",
            )
        )
    if traceparent and not valid_traceparent(traceparent):
        violations.append(
            FieldViolation(
                f"{prefix}.traceparent",
                "must be a W3C traceparent: version-traceid-parentid-flags in lowercase hex, "
                "ids not all zeros",
                "INVALID_FORMAT",
            )
        )
    if tracestate:
        if not traceparent:
            violations.append(
                FieldViolation(
                    f"{prefix}.tracestate", "needs a traceparent", "TRACEPARENT_REQUIRED"
                )
            )
        elif not _valid_tracestate(tracestate):
            violations.append(
                FieldViolation(
                    f"{prefix}.tracestate",
                    f"must be a W3C tracestate: at most {MAX_TRACESTATE_MEMBERS} comma-separated "
                    "key=value members",
                    "INVALID_FORMAT",
                )
            )


def _valid_tracestate(value: str) -> bool:
    """Empty members (``a=1,,b=2``) are allowed; keys are unique."""
    members = [m.strip(" \t") for m in value.split(",")]
    present = [m for m in members if m]
    keys = [m.partition("=")[0] for m in present]
    return (
        0 < len(present) <= MAX_TRACESTATE_MEMBERS
        and len(set(keys)) == len(keys)
        and all(TRACESTATE_MEMBER.fullmatch(m) for m in present)
    )
