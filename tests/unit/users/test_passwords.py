"""Password hashing: argon2id at OWASP's cost, rehash when the cost changes, the length policy.

An unknown user costs a full hash of the same parameters, so a login does not tell whether
the user exists.
"""

import pytest
from argon2 import PasswordHasher, extract_parameters

from users.passwords import Passwords, password_problem


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


def test_password_policy():
    assert password_problem("short") is not None
    assert password_problem("x" * 2000) is not None
    assert password_problem("twelve chars") is None


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
