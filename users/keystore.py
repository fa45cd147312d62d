"""Private signing keys at rest: sealed in an AES-256-GCM envelope under a key-encryption key.

The key ring lives in the database (:class:`users.keys.KeyRing`), so every replica signs with
the same keys and a new one needs only the database URL and this one secret. A database dump
alone signs nothing: each private key is encrypted with a data key of its own, and the data key
with the key-encryption key (KEK), which never reaches the database. The envelope, a JSON text
in ``signing_keys.sealed``::

    {"v": 1, "kek": "<8 bytes of SHA-256(KEK), hex>",
     "dek": "<base64: 12-byte nonce || AES-256-GCM(KEK, data key, aad=kid)>",
     "key": "<base64: 12-byte nonce || AES-256-GCM(data key, PKCS#8 DER, aad=kid)>"}

The ``kid`` as associated data ties each envelope to its row, so a database writer cannot
swap one key's envelope for another's; ``kek`` names which KEK sealed it, so a wrong one is
refused by name rather than as a failed decryption.

The KEK is 32 random bytes, base64, from ``MESH_KEY_ENCRYPTION_KEY`` or the file
``MESH_KEY_ENCRYPTION_KEY_FILE`` names (a mounted secret); without either, a file in the data
folder made at the first start (mode 0600), which serves a mesh on one machine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common import times
from common.config import ConfigError, env_str
from users.secret_files import secret_file

KEK_FILE = "key-encryption-key"
"""The KEK's file in the data folder when the environment names none."""
LEGACY_MANIFEST = "keyring.json"
"""What the key folder of a ring kept as files held besides one PEM file per key."""
_NONCE = 12
_VERSION = 1


class SealError(ValueError):
    """An envelope that this KEK did not seal, or that was changed since."""


def key_encryption_key(data_dir: Path) -> bytes:
    """The KEK from the environment, else from (or made in) ``data_dir``; ConfigError if bad."""
    value = env_str("MESH_KEY_ENCRYPTION_KEY", "")
    source = "MESH_KEY_ENCRYPTION_KEY"
    if not value:
        path = env_str("MESH_KEY_ENCRYPTION_KEY_FILE", "")
        if path:
            source = path
            try:
                value = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read MESH_KEY_ENCRYPTION_KEY_FILE: {exc}") from exc
        else:
            source = str(data_dir / KEK_FILE)
            value = secret_file(
                data_dir / KEK_FILE, base64.b64encode(secrets.token_bytes(32)).decode()
            )
    try:
        kek = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ConfigError(f"the key-encryption key ({source}) is not base64") from exc
    if len(kek) != 32:
        raise ConfigError(f"the key-encryption key ({source}) must be 32 bytes, not {len(kek)}")
    return kek


class Sealer:
    """Seals and opens secrets with one KEK: private keys, and TOTP secrets the same way.

    The associated data names what a sealed secret belongs to (a key id, ``totp:<user id>``),
    so its envelope opens nowhere else.
    """

    def __init__(self, kek: bytes) -> None:
        self._kek = AESGCM(kek)
        self._kek_id = hashlib.sha256(kek).hexdigest()[:16]

    def seal(self, kid: str, key: ec.EllipticCurvePrivateKey) -> str:
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return self.seal_bytes(kid, der)

    def seal_bytes(self, owner: str, secret: bytes) -> str:
        """The envelope of ``secret``, bound to ``owner``."""
        data_key = AESGCM.generate_key(bit_length=256)
        aad = owner.encode()
        envelope = {
            "v": _VERSION,
            "kek": self._kek_id,
            "dek": _encrypt(self._kek, data_key, aad),
            "key": _encrypt(AESGCM(data_key), secret, aad),
        }
        return json.dumps(envelope, separators=(",", ":"))

    def open_bytes(self, owner: str, sealed: str) -> bytes:
        """What :meth:`seal_bytes` sealed for ``owner``; SealError for anything else."""
        try:
            envelope: dict[str, Any] = json.loads(sealed)
            version, kek_id = envelope["v"], envelope["kek"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SealError(f"{owner}: not an envelope") from exc
        if version != _VERSION:
            raise SealError(f"{owner}: envelope version {version} is not known")
        if kek_id != self._kek_id:
            raise SealError(
                f"{owner} was sealed with another key-encryption key ({kek_id}, this one is "
                f"{self._kek_id}): set MESH_KEY_ENCRYPTION_KEY to the one it was sealed with"
            )
        aad = owner.encode()
        try:
            data_key = _decrypt(self._kek, envelope["dek"], aad)
            return _decrypt(AESGCM(data_key), envelope["key"], aad)
        except (InvalidTag, KeyError, ValueError) as exc:
            raise SealError(f"{owner}: the envelope does not open (changed, or moved)") from exc

    def open(self, kid: str, sealed: str) -> ec.EllipticCurvePrivateKey:
        der = self.open_bytes(kid, sealed)
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SealError(f"key {kid} is not an EC key")
        return key


def _encrypt(cipher: AESGCM, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(_NONCE)
    return base64.b64encode(nonce + cipher.encrypt(nonce, plaintext, aad)).decode()


def _decrypt(cipher: AESGCM, sealed: str, aad: bytes) -> bytes:
    raw = base64.b64decode(sealed, validate=True)
    return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], aad)


class FolderKey:
    """A key of a ring kept as files, before the ring moved into the database."""

    def __init__(self, entry: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> None:
        self.kid: str = entry["kid"]
        self.private_key = key
        self.created_ns = _moment(entry, "created") or 0
        self.retired_ns = _moment(entry, "retired")


def read_key_folder(folder: Path) -> tuple[list[FolderKey], FolderKey | None] | None:
    """The signing and retired keys and the next one of a folder ring; None without one."""
    manifest_path = folder / LEGACY_MANIFEST
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())

    def load(entry: dict[str, Any]) -> FolderKey:
        pem = (folder / f"{entry['kid']}.pem").read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"key {entry['kid']} is not an EC key")
        return FolderKey(entry, key)

    upcoming = manifest.get("next")
    return [load(entry) for entry in manifest["keys"]], load(upcoming) if upcoming else None


def remove_key_folder(folder: Path) -> None:
    """Delete a folder ring's files once the database holds its keys: no plaintext copies."""
    for path in [*folder.glob("*.pem"), folder / LEGACY_MANIFEST]:
        path.unlink(missing_ok=True)


def _moment(entry: dict[str, Any], name: str) -> int | None:
    """``<name>_ns``, or ``<name>_at`` in float seconds as manifests wrote it before."""
    if (nanos := entry.get(f"{name}_ns")) is not None:
        return int(nanos)
    seconds = entry.get(f"{name}_at")
    return None if seconds is None else times.seconds(float(seconds))
