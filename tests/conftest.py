"""Fixtures every kind of test uses: a token signer and a verifier that trusts it.

Services a test builds from the environment serve their metrics on a free port, as their gRPC.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.auth import NoRevocations, TokenVerifier
from common.config import METRICS_LISTEN
from tests.support.tokens import AUDIENCE, ISSUER, TestSigner

pytest_plugins = ["tests.support.reasons"]


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="session")
def verifier(signer: TestSigner) -> TokenVerifier:
    """Accepts what ``signer`` mints and revokes nothing."""
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, keys=signer, revocations=NoRevocations())


@pytest.fixture(scope="session", autouse=True)
def metrics_on_free_ports() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for service in METRICS_LISTEN:
            patch.setenv(f"MESH_{service.upper()}_METRICS_LISTEN", "127.0.0.1:0")
        yield
