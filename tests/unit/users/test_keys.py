import os
import stat

from users.keys import KeyRing, thumbprint


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_first_key_is_created_private_and_reloaded(tmp_path):
    ring = KeyRing(tmp_path / "keys", retention_seconds=60)
    kid = ring.signing_key().kid
    assert kid == thumbprint(ring.signing_key().private_key)
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    for path in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = KeyRing(tmp_path / "keys", retention_seconds=60)
    assert again.signing_key().kid == kid
    assert again.public_key(kid) is not None


def test_rotation_publishes_old_keys_until_their_tokens_expire(tmp_path):
    clock = Clock()
    ring = KeyRing(tmp_path, retention_seconds=60, clock=clock)
    old = ring.signing_key().kid
    new = ring.rotate().kid
    assert ring.signing_key().kid == new != old
    assert [k["kid"] for k in ring.jwks()] == [new, old]
    assert ring.public_key(old) is not None
    clock.now += 61
    assert [k["kid"] for k in ring.jwks()] == [new]
    assert ring.public_key(old) is None
    # The next rotation forgets the expired key entirely, file included.
    newest = ring.rotate().kid
    assert not (tmp_path / f"{old}.pem").exists()
    reloaded = KeyRing(tmp_path, retention_seconds=60, clock=clock)
    assert [k["kid"] for k in reloaded.jwks()] == [newest, new]


def test_jwk_shape(tmp_path):
    jwk = KeyRing(tmp_path, retention_seconds=60).jwks()[0]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
