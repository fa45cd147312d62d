"""TOTP codes as an authenticator app computes them, for the tests that log in with them."""

from __future__ import annotations

import time

import pyotp


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    """The code of the current 30-second step, or of one ``steps_ahead`` of it.

    The service takes the next step's code too (one step of drift), which gives a test a
    second code that is newer than the last one accepted without waiting 30 seconds.
    """
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)
