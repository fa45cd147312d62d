"""The TOTP rules on their own: drift, the format of a code, recovery codes and their digest."""

from __future__ import annotations

import pyotp

from common import times
from users import totp

NOW_NS = 1_800_000_015 * times.SECOND
"""15 seconds into a 30-second step."""
STEP = NOW_NS // times.seconds(totp.STEP_SECONDS)


def test_a_code_of_the_steps_either_side_matches_and_no_further() -> None:
    secret = totp.enrolment(issuer="mesh", username="ada").secret
    otp = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, otp.generate_otp(STEP + offset), now_ns=NOW_NS) == (
            STEP + offset
        )
    for offset in (-2, 2):
        assert totp.matching_step(secret, otp.generate_otp(STEP + offset), now_ns=NOW_NS) is None


def test_anything_but_six_digits_matches_nothing() -> None:
    secret = totp.enrolment(issuer="mesh", username="ada").secret
    code = pyotp.TOTP(secret).generate_otp(STEP)
    for bad in ("", code[:5], code + "0", "١٢٣٤٥٦", "12 456", "abcdef"):
        assert totp.matching_step(secret, bad, now_ns=NOW_NS) is None
    assert totp.matching_step(secret, f" {code} ", now_ns=NOW_NS) == STEP


def test_an_enrolment_names_the_issuer_and_user_and_draws_the_uri() -> None:
    enrolment = totp.enrolment(issuer="ontology-mesh", username="ada")
    assert len(enrolment.secret) == 32  # 160 bits of base32
    assert pyotp.parse_uri(enrolment.provisioning_uri).secret == enrolment.secret
    assert enrolment.provisioning_uri.startswith("otpauth://totp/ontology-mesh:ada?")
    assert enrolment.qr_code_svg.startswith("<svg") and enrolment.qr_code_svg.endswith("</svg>")
    assert totp.enrolment(issuer="ontology-mesh", username="ada").secret != enrolment.secret


def test_recovery_codes_are_ten_distinct_and_their_digest_ignores_how_they_are_typed() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == totp.RECOVERY_CODES == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    code = codes[0]
    assert totp.recovery_code_hash(code.upper().replace("-", " ")) == totp.recovery_code_hash(code)
    assert totp.recovery_code_hash(codes[1]) != totp.recovery_code_hash(code)
