"""Fixtures every kind of test uses: a token signer and a verifier that trusts it."""

from __future__ import annotations

import pytest

from common.auth import NoRevocations, TokenVerifier
from tests.support.tokens import AUDIENCE, ISSUER, TestSigner


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="session")
def verifier(signer: TestSigner) -> TokenVerifier:
    """Accepts what ``signer`` mints and revokes nothing."""
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=NoRevocations())
