"""The signing key ring: a private folder, rotation, retention, replicas sharing the folder.

The next key is published before it signs, an old one until its tokens expire, and a manifest
written in float seconds still reads as the same moments.
"""

import json
import os
import stat

from common import times
from users.keys import KeyRing, thumbprint


class Clock:
    """A wall clock in nanoseconds and a monotonic one in seconds, moved together."""

    def __init__(self):
        self.seconds = 1_000_000.0

    def __call__(self):
        return times.seconds(self.seconds)

    def monotonic(self):
        return self.seconds

    def ring(self, folder, retention_seconds):
        return KeyRing(
            folder, retention_seconds=retention_seconds, clock=self, monotonic=self.monotonic
        )


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
    ring = clock.ring(tmp_path, 60)
    old = ring.signing_key().kid
    upcoming = published(ring)[-1]
    new = ring.rotate().kid
    assert new == upcoming
    assert ring.signing_key().kid == new != old
    after_next = published(ring)[-1]
    assert published(ring) == [new, old, after_next]
    assert ring.public_key(old) is not None
    clock.seconds += 61
    assert published(ring) == [new, after_next]
    assert ring.public_key(old) is None
    # The next rotation forgets the expired key entirely, file included.
    newest = ring.rotate().kid
    assert newest == after_next
    assert not (tmp_path / f"{old}.pem").exists()
    reloaded = clock.ring(tmp_path, 60)
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
    rotating = clock.ring(tmp_path / "keys", 3600)
    other = clock.ring(tmp_path / "keys", 3600)
    first = rotating.rotate().kid
    second = rotating.rotate().kid
    clock.seconds += 2
    # The other replica signs with the current key and knows every published one.
    assert other.signing_key().kid == second
    assert other.public_key(first) is not None and other.public_key(second) is not None
    assert published(other) == published(rotating)
    # A rotation there builds on the latest ring rather than on its own stale copy.
    third = other.rotate().kid
    clock.seconds += 2
    assert rotating.signing_key().kid == third
    assert published(rotating) == published(other)
    assert {first, second, third} <= set(published(rotating))


def test_a_manifest_written_in_float_seconds_is_read_as_the_same_moments(tmp_path):
    clock = Clock()
    ring = clock.ring(tmp_path, 60)
    old = ring.signing_key().kid
    ring.rotate()
    manifest = json.loads((tmp_path / "keyring.json").read_text())
    for entry in [*manifest["keys"], manifest["next"]]:
        entry["created_at"] = entry.pop("created_ns") / times.SECOND
        if "retired_ns" in entry:
            retired = entry.pop("retired_ns")
            entry["retired_at"] = None if retired is None else retired / times.SECOND
    (tmp_path / "keyring.json").write_text(json.dumps(manifest))
    reloaded = clock.ring(tmp_path, 60)
    assert published(reloaded) == published(ring)
    clock.seconds += 61  # the retired key's retention ends when it did before the rewrite
    assert old not in published(reloaded)
