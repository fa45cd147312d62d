"""The signing key ring: sealed rows, rotation, retention, replicas sharing the database.

The next key is published before it signs, an old one until its tokens expire; a ring kept as
files before is imported once, float-second manifests included, and its files removed.
"""

import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common import times
from common.config import ConfigError
from common.db import Database
from users.keys import KeyRing, thumbprint
from users.keystore import KEK_FILE, Sealer, SealError, key_encryption_key
from users.sql_store import SqlUserStore

KEK = bytes(range(32))


class Clock:
    """A wall clock in nanoseconds."""

    def __init__(self):
        self.seconds = 1_000_000.0

    def __call__(self):
        return times.seconds(self.seconds)


@pytest.fixture
def store(tmp_path):
    store = SqlUserStore(Database(f"sqlite:///{tmp_path / 'users.db'}"))
    store.migrate()
    yield store
    store.close()


def ring(store, clock=times.now, retention_seconds=60, **options):
    return KeyRing(store, Sealer(KEK), retention_seconds=retention_seconds, clock=clock, **options)


def rotate(store, keys):
    with store.write() as tx:
        return keys.rotate(tx).key.kid


def published(keys):
    return [k["kid"] for k in keys.jwks()]


def test_the_first_ring_is_sealed_in_the_database_and_read_back(store):
    keys = ring(store)
    kid = keys.signing_key().kid
    assert kid == thumbprint(keys.signing_key().private_key)
    with store.read() as reads:
        stored = reads.signing_keys()
    assert [row.kid for row in stored] == published(keys)
    secret = keys.signing_key().private_key.private_numbers().private_value
    der = keys.signing_key().private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for row in stored:
        assert "PRIVATE KEY" not in row.sealed and str(secret) not in row.sealed
        assert der.hex() not in row.sealed
    again = ring(store)
    assert again.signing_key().kid == kid
    assert again.public_key(kid) is not None


def test_rotation_publishes_old_keys_until_their_tokens_expire(store):
    clock = Clock()
    keys = ring(store, clock)
    old = keys.signing_key().kid
    upcoming = published(keys)[-1]
    new = rotate(store, keys)
    assert new == upcoming
    assert keys.signing_key().kid == new != old
    after_next = published(keys)[-1]
    assert published(keys) == [new, old, after_next]
    assert keys.public_key(old) is not None
    clock.seconds += 61
    assert published(keys) == [new, after_next]
    assert keys.public_key(old) is None
    # The next rotation forgets the expired key entirely, its row included.
    newest = rotate(store, keys)
    assert newest == after_next
    with store.read() as reads:
        assert old not in {row.kid for row in reads.signing_keys()}
    reloaded = ring(store, clock)
    assert published(reloaded) == published(keys)
    assert published(reloaded)[:2] == [newest, new]


def test_the_next_signing_key_is_published_before_it_signs(store):
    keys = ring(store)
    before = published(keys)
    assert len(before) == 2
    assert before[0] == keys.signing_key().kid
    assert keys.public_key(before[1]) is not None
    assert rotate(store, keys) in before
    assert ring(store).signing_key().kid == before[1]


def test_jwk_shape(store):
    jwk = ring(store).jwks()[0]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")


def test_replicas_sharing_the_database_follow_each_others_rotations(tmp_path, store):
    clock = Clock()
    rotating = ring(store, clock, 3600)
    other_store = SqlUserStore(Database(f"sqlite:///{tmp_path / 'users.db'}"))
    other = ring(other_store, clock, 3600)
    first = rotate(store, rotating)
    second = rotate(store, rotating)
    other.reload()  # what the Notifier does when the rotation's commit is announced
    assert other.signing_key().kid == second
    assert other.public_key(first) is not None and other.public_key(second) is not None
    assert published(other) == published(rotating)
    # A rotation there builds on the stored ring, even one it has not reloaded yet.
    rotate(store, rotating)
    third = rotate(other_store, other)
    rotating.reload()
    assert rotating.signing_key().kid == third
    assert published(rotating) == published(other)
    assert {first, second, third} <= set(published(rotating))
    other_store.close()


def _write_folder_ring(folder, clock):
    """A ring as the file-based ring left it, its moments in float seconds as older ones did."""
    folder.mkdir()
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    for key in keys:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (folder / f"{thumbprint(key)}.pem").write_bytes(pem)
    now = clock.seconds
    manifest = {
        "keys": [
            {"kid": thumbprint(keys[0]), "created_at": now, "retired_at": None},
            {"kid": thumbprint(keys[1]), "created_at": now - 10, "retired_at": now},
        ],
        "next": {"kid": thumbprint(keys[2]), "created_at": now},
    }
    (folder / "keyring.json").write_text(json.dumps(manifest))
    return [thumbprint(k) for k in keys]


def test_a_folder_ring_is_imported_once_and_its_files_removed(tmp_path, store):
    clock = Clock()
    signing, retired, upcoming = _write_folder_ring(tmp_path / "keys", clock)
    keys = ring(store, clock, legacy_folder=tmp_path / "keys")
    assert published(keys) == [signing, retired, upcoming]
    assert list((tmp_path / "keys").iterdir()) == []
    clock.seconds += 61  # the retired key's retention ends when it did in the files
    assert published(keys) == [signing, upcoming]
    # Files appearing again later are not imported: the database holds the ring.
    _write_folder_ring(tmp_path / "again", clock)
    assert ring(store, clock, legacy_folder=tmp_path / "again").signing_key().kid == signing


def test_an_envelope_opens_only_with_its_key_encryption_key_and_for_its_kid():
    key = ec.generate_private_key(ec.SECP256R1())
    sealed = Sealer(KEK).seal("kid-1", key)
    opened = Sealer(KEK).open("kid-1", sealed)
    assert opened.private_numbers() == key.private_numbers()
    with pytest.raises(SealError, match="another key-encryption key"):
        Sealer(bytes(32)).open("kid-1", sealed)
    with pytest.raises(SealError, match="does not open"):
        Sealer(KEK).open("kid-2", sealed)  # an envelope moved to another key's row
    tampered = json.loads(sealed)
    tampered["key"] = tampered["key"][:-4] + ("AAAA" if tampered["key"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(SealError):
        Sealer(KEK).open("kid-1", json.dumps(tampered))


def test_the_key_encryption_key_comes_from_the_environment_a_secret_file_or_the_data_folder(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("MESH_KEY_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("MESH_KEY_ENCRYPTION_KEY_FILE", raising=False)
    made = key_encryption_key(tmp_path)
    assert len(made) == 32
    assert stat.S_IMODE(os.stat(tmp_path / KEK_FILE).st_mode) == 0o600
    assert key_encryption_key(tmp_path) == made  # made once, then read
    mounted = tmp_path / "mounted"
    mounted.write_text(base64.b64encode(KEK).decode() + "\n")
    monkeypatch.setenv("MESH_KEY_ENCRYPTION_KEY_FILE", str(mounted))
    assert key_encryption_key(tmp_path) == KEK
    monkeypatch.setenv("MESH_KEY_ENCRYPTION_KEY", base64.b64encode(bytes(32)).decode())
    assert key_encryption_key(tmp_path) == bytes(32)
    monkeypatch.setenv("MESH_KEY_ENCRYPTION_KEY", base64.b64encode(bytes(16)).decode())
    with pytest.raises(ConfigError, match="32 bytes"):
        key_encryption_key(tmp_path)
