"""Password hashing: argon2id at OWASP's cost, rehash when the cost changes, the rules.

An unknown user costs a full hash of the same parameters, so a login does not tell whether
the user exists.
"""

import pytest
from argon2 import PasswordHasher, extract_parameters

from users.passwords import PasswordRules, Passwords, judge


@pytest.fixture(scope="module")
def cheap():
    return Passwords("test")


def test_hash_is_argon2id_and_verifies(cheap):
    stored = cheap.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert cheap.verify(stored, "correct horse battery").ok
    assert not cheap.verify(stored, "wrong horse battery").ok


def test_unknown_user_never_verifies(cheap):
    assert not cheap.verify(None, "anything at all").ok
    assert not cheap.verify("not a hash", "anything at all").ok


def test_production_profile_meets_owasp():
    params = extract_parameters(Passwords("owasp").hash("correct horse battery"))
    assert params.type.name == "ID"
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def test_changed_parameters_rehash_on_success(cheap):
    stronger = Passwords("owasp")
    old = cheap.hash("correct horse battery")
    verdict = stronger.verify(old, "correct horse battery")
    assert verdict.ok and verdict.new_hash is not None
    assert extract_parameters(verdict.new_hash).memory_cost == 19 * 1024
    assert stronger.verify(verdict.new_hash, "correct horse battery").new_hash is None
    assert stronger.verify(old, "wrong one").new_hash is None


RULES = PasswordRules(min_length=12, min_score=3)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "PASSWORD_TOO_SHORT"),
        ("x" * 2000, "PASSWORD_TOO_LONG"),
        ("passwordpassword", "PASSWORD_TOO_GUESSABLE"),
        ("123456789012", "PASSWORD_TOO_GUESSABLE"),
        # The username and the email are what an attacker tries first.
        ("marguerite.duval1", "PASSWORD_TOO_GUESSABLE"),
        ("marguerite@example.org", "PASSWORD_TOO_GUESSABLE"),
    ],
)
def test_the_rules_refuse_with_a_reason(password, reason):
    refusal = judge(password, RULES, context=["marguerite.duval", "marguerite@example.org"])
    assert refusal is not None and refusal.reason == reason, refusal


def test_a_strong_password_passes_and_the_score_is_a_setting():
    assert judge("violet tugboat ossifies slowly", RULES, context=["ann"]) is None
    assert judge("123456789012", PasswordRules(min_length=12, min_score=0), context=[]) is None


def test_a_long_password_is_judged_by_its_start_and_quickly():
    # zxcvbn's cost grows with the length; only the first characters are judged.
    assert judge("violet tugboat ossifies slowly " * 30, RULES, context=[]) is None
    assert judge("a" * 1024, RULES, context=[]).reason == "PASSWORD_TOO_GUESSABLE"


def test_history_matches_only_the_same_password(cheap):
    earlier = [cheap.hash("first of many"), cheap.hash("second of many")]
    assert cheap.matches_any(earlier, "second of many")
    assert not cheap.matches_any(earlier, "third of many")
    assert not cheap.matches_any(["not a hash"], "third of many")


def test_an_unknown_user_costs_a_full_hash_of_the_same_parameters(cheap, monkeypatch):
    checked = []
    real_verify = PasswordHasher.verify

    def spy(self, hash, password):
        checked.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    assert not cheap.verify(None, "anything at all").ok
    assert not cheap.verify(cheap.hash("the real one"), "anything at all").ok
    unknown, known = (extract_parameters(h) for h in checked)
    assert unknown == known
