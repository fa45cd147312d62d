"""The signing key ring: ES256 keys in the database (sealed), rotation, and the public JWKS.

The newest key signs; a retired key stays published (and verifying) until every token it
signed has expired, so a rotation never invalidates a live token. The key that will sign after
the next rotation is published ahead of time, so verifiers that cache the JWKS (each service,
Envoy) already hold it when the first token it signed arrives. Key ids are RFC 7638
thumbprints, so the same key always has the same ``kid``.

The ring is rows of the User Service's database, each private key sealed under the
key-encryption key (:mod:`users.keystore`), so every replica sharing the database signs with
the same keys. A rotation is a write transaction (the one of its event) that locks the ring;
every replica reloads it once that commits, told by its own commit or by PostgreSQL
(:mod:`common.notify`), and every minute besides. Signing and verifying read memory only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from common import errors, times
from common.auth import ALGORITHM
from common.blocking import Blocking
from users.keystore import FolderKey, Sealer, read_key_folder, remove_key_folder
from users.store import StoredKey, UserStore, UserWrites

log = logging.getLogger("mesh.users.keys")

RELOAD_SECONDS = 60.0
"""How often a ring is read again in case a rotation's announcement was missed."""


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


@dataclass(frozen=True)
class Rotation:
    """What a rotation did, for its event."""

    key: SigningKey
    previous_kid: str
    published_kids: list[str]


class KeyRing:
    """The keys of the User Service, loaded from (or created in) its database."""

    def __init__(
        self,
        store: UserStore,
        sealer: Sealer,
        *,
        retention_seconds: int,
        legacy_folder: Path | None = None,
        clock: Callable[[], int] = times.now,
    ) -> None:
        """The first start of a database makes the ring, importing ``legacy_folder``'s keys.

        ``clock`` dates rotations and ends retentions.
        """
        self._store = store
        self._sealer = sealer
        self._retention_ns = times.seconds(retention_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._opened: dict[str, SigningKey] = {}
        imported = False
        with store.write() as tx:
            stored = tx.signing_keys(lock=True)
            if not stored:
                stored, imported = self._first_ring(legacy_folder), legacy_folder is not None
                tx.replace_signing_keys(stored)
        self._keys, self._next = self._open(stored)
        if imported and legacy_folder is not None:
            remove_key_folder(legacy_folder)
        store.on_signing_keys(self.reload)

    def signing_key(self) -> SigningKey:
        return self._keys[0]

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
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
        keys, upcoming = self._keys, self._next
        return [*(k for k in keys if self._published(k)), upcoming]

    def rotate(self, tx: UserWrites) -> Rotation:
        """In ``tx``: sign with the pre-published next key, and publish a new next key.

        Keys whose tokens have all expired are dropped. The ring is locked until ``tx``
        commits, so a rotation on another replica builds on this one; memory follows the
        commit.
        """
        keys, upcoming = self._open(tx.signing_keys(lock=True))
        now = self._clock()
        retired = [_retired(k, k.retired_ns or now) for k in keys]
        fresh = SigningKey(kid=upcoming.kid, private_key=upcoming.private_key, created_ns=now)
        ring = [fresh, *(k for k in retired if self._published(k))]
        newest = self._new_key()
        tx.replace_signing_keys([*(self._stored(k, upcoming=False) for k in ring), newest])
        published = [k.kid for k in ring if self._published(k)] + [newest.kid]
        return Rotation(key=fresh, previous_kid=keys[0].kid, published_kids=published)

    def reload(self) -> None:
        """Read the ring again (after a commit that changed it, here or on another replica)."""
        with self._store.read() as reads:
            stored = reads.signing_keys()
        if stored:
            self._keys, self._next = self._open(stored)

    async def follow(self, blocking: Blocking) -> None:
        """Reload every :data:`RELOAD_SECONDS`, in case an announcement was lost."""
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await blocking.run(self.reload)
            except errors.MeshError as exc:
                log.warning("cannot read the signing keys", extra={"error": exc.message})

    def _published(self, key: SigningKey) -> bool:
        return key.retired_ns is None or self._clock() < key.retired_ns + self._retention_ns

    def _first_ring(self, legacy_folder: Path | None) -> list[StoredKey]:
        found = read_key_folder(legacy_folder) if legacy_folder is not None else None
        if found is None:
            return [self._stored(self._generate(), upcoming=False), self._new_key()]
        keys, upcoming = found
        log.info("signing keys imported from files", extra={"folder": str(legacy_folder)})
        return [
            *(self._stored(_from_folder(k), upcoming=False) for k in keys),
            self._stored(_from_folder(upcoming), upcoming=True)
            if upcoming is not None
            else self._new_key(),
        ]

    def _generate(self) -> SigningKey:
        private_key = ec.generate_private_key(ec.SECP256R1())
        return SigningKey(
            kid=thumbprint(private_key), private_key=private_key, created_ns=self._clock()
        )

    def _new_key(self) -> StoredKey:
        return self._stored(self._generate(), upcoming=True)

    def _stored(self, key: SigningKey, *, upcoming: bool) -> StoredKey:
        return StoredKey(
            kid=key.kid,
            sealed=self._sealer.seal(key.kid, key.private_key),
            created_ns=key.created_ns,
            retired_ns=key.retired_ns,
            upcoming=upcoming,
        )

    def _open(self, stored: list[StoredKey]) -> tuple[list[SigningKey], SigningKey]:
        """The signing and retired keys and the next one, each opened once per process.

        An unchanged key stays the same object, so verified-token caches keep their entries.
        """
        with self._lock:
            opened: dict[str, SigningKey] = {}
            for row in stored:
                known = self._opened.get(row.kid)
                if known is None or (known.created_ns, known.retired_ns) != (
                    row.created_ns,
                    row.retired_ns,
                ):
                    private_key = (
                        known.private_key if known else self._sealer.open(row.kid, row.sealed)
                    )
                    known = SigningKey(row.kid, private_key, row.created_ns, row.retired_ns)
                opened[row.kid] = known
            self._opened = opened
        keys = [opened[row.kid] for row in stored if not row.upcoming]
        upcoming = [opened[row.kid] for row in stored if row.upcoming]
        if not keys or len(upcoming) != 1:
            raise ValueError("the stored key ring has no signing key or no single next key")
        return keys, upcoming[0]


def _retired(key: SigningKey, retired_ns: int) -> SigningKey:
    return SigningKey(key.kid, key.private_key, key.created_ns, retired_ns)


def _from_folder(key: FolderKey) -> SigningKey:
    return SigningKey(key.kid, key.private_key, key.created_ns, key.retired_ns)
