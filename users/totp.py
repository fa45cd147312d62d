"""TOTP second factors (RFC 6238) and recovery codes: the rules, without storage.

Codes are pyotp's defaults, which every authenticator app takes: SHA-1, 6 digits, 30-second
steps. A code of the step before or after the current one is accepted too (one step of clock
drift either way, RFC 6238 section 5.2), and the caller refuses a step at or before the last
one accepted, so a code works once even inside its window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
import segno

from common import times

STEP_SECONDS = 30
DRIFT_STEPS = 1
"""Steps accepted either side of the current one."""
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""No 0/o, 1/l/i: codes are read off paper and typed in."""
_RECOVERY_GROUPS = 4
_RECOVERY_GROUP_LENGTH = 4


@dataclass(frozen=True)
class Enrolment:
    """What a user needs to put a new secret into their authenticator."""

    secret: str
    provisioning_uri: str
    qr_code_svg: str


def enrolment(*, issuer: str, username: str) -> Enrolment:
    """A fresh 160-bit secret (RFC 4226's recommended length) and how to show it."""
    secret = pyotp.random_base32(32)
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=4)
    return Enrolment(secret=secret, provisioning_uri=uri, qr_code_svg=svg)


def matching_step(secret: str, code: str, *, now_ns: int) -> int | None:
    """The time step whose code ``code`` is, within the drift allowed; None when none is."""
    code = code.strip()
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = now_ns // times.seconds(STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 characters from a 31-letter alphabet: about 79 random bits each."""
    return [
        "-".join(
            "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_GROUP_LENGTH))
            for _ in range(_RECOVERY_GROUPS)
        )
        for _ in range(RECOVERY_CODES)
    ]


def recovery_code_hash(code: str) -> str:
    """The SHA-256 a recovery code is stored as, ignoring case, spaces and dashes.

    A slow password hash buys nothing here: with 79 random bits a code cannot be guessed from
    its digest, however fast the digest is, and a fast digest lets a login find the code by
    lookup instead of checking ten argon2 hashes.
    """
    normal = "".join(c for c in code.lower() if c not in "- ")
    return hashlib.sha256(normal.encode()).hexdigest()
