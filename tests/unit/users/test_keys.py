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


def published(ring):
    return [k["kid"] for k in ring.jwks()]


def test_rotation_publishes_old_keys_until_their_tokens_expire(tmp_path):
    clock = Clock()
    ring = KeyRing(tmp_path, retention_seconds=60, clock=clock)
    old = ring.signing_key().kid
    upcoming = published(ring)[-1]
    new = ring.rotate().kid
    assert new == upcoming
    assert ring.signing_key().kid == new != old
    after_next = published(ring)[-1]
    assert published(ring) == [new, old, after_next]
    assert ring.public_key(old) is not None
    clock.now += 61
    assert published(ring) == [new, after_next]
    assert ring.public_key(old) is None
    # The next rotation forgets the expired key entirely, file included.
    newest = ring.rotate().kid
    assert newest == after_next
    assert not (tmp_path / f"{old}.pem").exists()
    reloaded = KeyRing(tmp_path, retention_seconds=60, clock=clock)
    assert published(reloaded) == published(ring)
    assert published(reloaded)[:2] == [newest, new]


def test_the_next_signing_key_is_published_before_it_signs(tmp_path):
    ring = KeyRing(tmp_path, retention_seconds=60)
    before = published(ring)
    assert len(before) == 2
    assert before[0] == ring.signing_key().kid
    assert ring.public_key(before[1]) is not None
    assert ring.rotate().kid in before
    assert KeyRing(tmp_path, retention_seconds=60).signing_key().kid == before[1]


def test_jwk_shape(tmp_path):
    jwk = KeyRing(tmp_path, retention_seconds=60).jwks()[0]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")


def test_replicas_sharing_the_folder_follow_each_others_rotations(tmp_path):
    clock = Clock()
    rotating = KeyRing(tmp_path / "keys", retention_seconds=3600, clock=clock)
    other = KeyRing(tmp_path / "keys", retention_seconds=3600, clock=clock)
    first = rotating.rotate().kid
    second = rotating.rotate().kid
    clock.now += 2
    # The other replica signs with the current key and knows every published one.
    assert other.signing_key().kid == second
    assert other.public_key(first) is not None and other.public_key(second) is not None
    assert published(other) == published(rotating)
    # A rotation there builds on the latest ring rather than on its own stale copy.
    third = other.rotate().kid
    clock.now += 2
    assert rotating.signing_key().kid == third
    assert published(rotating) == published(other)
    assert {first, second, third} <= set(published(rotating))
