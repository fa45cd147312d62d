"""The signing key ring: ES256 keys on disk (mode 0600), rotation, and the public JWKS.

The newest key signs; a retired key stays published (and verifying) until every token it
signed has expired, so a rotation never invalidates a live token. The key that will sign after
the next rotation is published ahead of time, so verifiers that cache the JWKS (each service,
Envoy) already hold it when the first token it signed arrives. Key ids are RFC 7638
thumbprints, so the same key always has the same ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from common import times
from common.auth import ALGORITHM

log = logging.getLogger("mesh.users.keys")

MANIFEST = "keyring.json"
RELOAD_SECONDS = 1.0
"""How often a ring checks the shared folder for a rotation made by another replica."""


@dataclass(frozen=True)
class SigningKey:
    """One key pair and its life: signing until retired, published until retention ends."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey
    created_ns: int
    retired_ns: int | None = None

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """One object per key, so verified-token caches can tell the key is still the same."""
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return jwk


def thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key."""
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    canonical = json.dumps(
        {name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, without a window where it is world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class KeyRing:
    """Keys of one User Service, loaded from (or created in) ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        retention_seconds: int,
        clock: Callable[[], int] = times.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` dates rotations; ``monotonic`` paces the checks for other replicas'."""
        self._dir = directory
        self._retention_ns = times.seconds(retention_seconds)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self._dir, 0o700)
        self._manifest = b""
        self._checked_at = self._monotonic()
        self._keys, next_key = self._load()
        if not self._keys:
            self._keys = [self._new_key()]
        self._next = next_key or self._new_key()
        if next_key is None:
            self._save()

    def signing_key(self) -> SigningKey:
        self._follow_disk()
        return self._keys[0]

    def public_key(self, kid: str) -> Any | None:
        """The verification key for ``kid`` while it is published (a ``KeyProvider``)."""
        for key in self._published_keys():
            if key.kid == kid:
                return key.public_key
        return None

    async def refresh(self) -> bool:
        """Nothing to fetch: the ring is the source of the keys."""
        return False

    def jwks(self) -> list[dict[str, str]]:
        """Published public keys: the signing key first, the next one last."""
        return [key.jwk() for key in self._published_keys()]

    def _published_keys(self) -> list[SigningKey]:
        self._follow_disk()
        return [*(k for k in self._keys if self._published(k)), self._next]

    def rotate(self) -> SigningKey:
        """Sign with the pre-published next key from now on, and publish a new next key.

        Keys whose tokens have all expired are dropped.
        """
        with self._lock:
            self._reload()
            now = self._clock()
            retired = [replace(k, retired_ns=k.retired_ns or now) for k in self._keys]
            fresh = replace(self._next, created_ns=now)
            self._next = self._new_key()
            self._keys = [fresh, *(k for k in retired if self._published(k))]
            self._save()
            for stale in retired:
                if not self._published(stale):
                    (self._dir / f"{stale.kid}.pem").unlink(missing_ok=True)
            return fresh

    def _follow_disk(self) -> None:
        """Pick up a rotation made by another replica sharing the folder (checked each second).

        Without it a replica would keep signing with a retired key and, after a second
        rotation elsewhere, refuse tokens signed by a key it never published.
        """
        if self._monotonic() - self._checked_at < RELOAD_SECONDS:
            return
        with self._lock:
            try:
                self._reload()
            except (OSError, ValueError):
                # Caught mid-rotation (a key file already removed): keep the ring, retry later.
                log.warning("cannot reload the signing keys; keeping the current ones")

    def _reload(self) -> None:
        self._checked_at = self._monotonic()
        keys, next_key = self._load()
        if keys and next_key is not None:
            self._keys, self._next = keys, next_key

    def _published(self, key: SigningKey) -> bool:
        return key.retired_ns is None or self._clock() < key.retired_ns + self._retention_ns

    def _new_key(self) -> SigningKey:
        private_key = ec.generate_private_key(ec.SECP256R1())
        key = SigningKey(
            kid=thumbprint(private_key), private_key=private_key, created_ns=self._clock()
        )
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self._dir / f"{key.kid}.pem", pem)
        return key

    def _save(self) -> None:
        manifest = {
            "keys": [
                {"kid": k.kid, "created_ns": k.created_ns, "retired_ns": k.retired_ns}
                for k in self._keys
            ],
            "next": {"kid": self._next.kid, "created_ns": self._next.created_ns},
        }
        content = json.dumps(manifest, indent=2).encode()
        staging = self._dir / f"{MANIFEST}.tmp"
        _write_private(staging, content)
        os.replace(staging, self._dir / MANIFEST)
        self._manifest = content

    def _load(self) -> tuple[list[SigningKey], SigningKey | None]:
        """The signing and retired keys, and the next key (absent in older manifests)."""
        path = self._dir / MANIFEST
        if not path.exists():
            return [], None
        content = path.read_bytes()
        if content == self._manifest:
            return self._keys, self._next
        manifest = json.loads(content)
        keys = [self._load_key(entry) for entry in manifest["keys"]]
        next_entry = manifest.get("next")
        next_key = self._load_key(next_entry) if next_entry else None
        self._manifest = content
        return keys, next_key

    def _load_key(self, entry: dict[str, Any]) -> SigningKey:
        pem = (self._dir / f"{entry['kid']}.pem").read_bytes()
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"key {entry['kid']} is not an EC key")
        return SigningKey(
            kid=entry["kid"],
            private_key=private_key,
            created_ns=_moment(entry, "created") or 0,
            retired_ns=_moment(entry, "retired"),
        )


def _moment(entry: dict[str, Any], name: str) -> int | None:
    """``<name>_ns``, or ``<name>_at`` in float seconds as manifests wrote it before."""
    if (nanos := entry.get(f"{name}_ns")) is not None:
        return int(nanos)
    seconds = entry.get(f"{name}_at")
    return None if seconds is None else times.seconds(float(seconds))
