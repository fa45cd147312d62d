"""Signed checkpoints: the log's tree head as a C2SP ``tlog-checkpoint`` signed note.

A checkpoint's note text is three lines, origin, tree size and the base64 root hash, each
ending in a newline; after a blank line comes one signature line, ``— <name> <base64(key id ||
Ed25519 signature)>``, with the key named after the origin (C2SP ``signed-note``). The key id is
the first four bytes of SHA-256(name || 0x0A || 0x01 || public key). The verifier key is
published as ``<name>+<hex key id>+<base64(0x01 || public key)>``, the form Go's
``golang.org/x/mod/sumdb/note`` and every C2SP tool read, so anyone can pin it.

The signing key is kept out of the database on purpose: whoever can write the database must
not be able to sign a history of their own making.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import merkle

ED25519 = 0x01
"""The C2SP signed-note signature type of Ed25519."""
MAX_NOTE_BYTES = 4096
"""Longest note a verifier reads; a checkpoint is under 300 bytes."""


class NoteError(ValueError):
    """A note that is malformed, or not signed by the key it is checked against."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the claim that the log's first ``size`` events hash to ``root``."""

    origin: str
    size: int
    root: bytes
    note: str
    """The whole signed note, as signed and as clients verify it."""
    signed_ns: int = 0
    """When this log signed it (not part of the signed text)."""

    @property
    def text(self) -> str:
        return checkpoint_text(self.origin, self.size, self.root)


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"a key name must be non-empty, without spaces or '+': {name!r}")


@dataclass(frozen=True)
class VerifierKey:
    """A pinned public key: the key name and the Ed25519 key it stands for."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    def encode(self) -> str:
        """``<name>+<hex key id>+<base64(0x01 || key)>``."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        name, _, rest = text.strip().partition("+")
        hex_id, _, encoded = rest.partition("+")
        try:
            key = base64.b64decode(encoded, validate=True)
            key_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise NoteError(f"not a verifier key: {text!r}") from exc
        _check_name(name)
        if len(key) != 33 or key[0] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key")
        found = cls(name, key[1:])
        if found.key_id != key_id:
            raise NoteError("the verifier key's id does not match its key")
        return found

    def verify(self, note: str) -> str:
        """The note's text if this key signed it; :class:`NoteError` otherwise."""
        if len(note.encode()) > MAX_NOTE_BYTES:
            raise NoteError(f"the note is longer than {MAX_NOTE_BYTES} bytes")
        text, separator, signatures = note.rpartition("\n\n")
        if not separator:
            raise NoteError("the note has no signature block (a blank line, then signatures)")
        if not signatures.endswith("\n"):
            raise NoteError("a note ends with a newline after its last signature line")
        text += "\n"
        if any(ord(c) < 0x20 and c != "\n" for c in note):
            raise NoteError("the note holds control characters")
        public = Ed25519PublicKey.from_public_bytes(self.public)
        for line in signatures[:-1].split("\n"):
            dash, _, rest = line.partition(" ")
            name, _, encoded = rest.partition(" ")
            if dash != "—" or not name or not encoded:
                raise NoteError(f"malformed signature line: {line!r}")
            try:
                blob = base64.b64decode(encoded, validate=True)
            except binascii.Error as exc:
                raise NoteError(f"malformed signature line: {line!r}") from exc
            if name != self.name or blob[:4] != self.key_id:
                continue  # someone else's signature (a witness's cosignature): ignored
            try:
                public.verify(blob[4:], text.encode())
            except InvalidSignature as exc:
                raise NoteError(f"the signature of {name} does not verify") from exc
            return text
        raise NoteError(f"the note carries no signature of {self.name}")

    def open(self, note: str) -> Checkpoint:
        """The checkpoint a note signed by this key holds."""
        lines = self.verify(note).split("\n")
        if len(lines) < 4 or not lines[1].isdigit() or lines[1] != str(int(lines[1])):
            raise NoteError("the note is not a checkpoint")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except binascii.Error as exc:
            raise NoteError("the checkpoint's root hash is not base64") from exc
        if len(root) != merkle.HASH_SIZE:
            raise NoteError("the checkpoint's root hash is not a SHA-256 hash")
        return Checkpoint(origin=lines[0], size=int(lines[1]), root=root, note=note)


class NoteSigner:
    """Signs checkpoints with the log's Ed25519 key, named after the log's origin."""

    def __init__(self, origin: str, key: Ed25519PrivateKey) -> None:
        _check_name(origin)
        self.origin = origin
        self._key = key
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verifier = VerifierKey(origin, public)

    def sign(self, size: int, root: bytes, *, signed_ns: int) -> Checkpoint:
        text = checkpoint_text(self.origin, size, root)
        signature = self._key.sign(text.encode())
        encoded = base64.b64encode(self.verifier.key_id + signature).decode()
        note = f"{text}\n— {self.origin} {encoded}\n"
        return Checkpoint(self.origin, size, root, note, signed_ns)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path`` (PKCS#8 PEM), made on first start with mode 0600."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another replica made it first: use theirs
            return load_or_create_key(path)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        return key
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return loaded
