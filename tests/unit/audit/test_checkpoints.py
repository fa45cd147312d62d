"""Checkpoints as C2SP signed notes: signing, pinning, and what a verifier refuses."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.checkpoints import NoteError, NoteSigner, VerifierKey, load_or_create_key

ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture
def signer():
    return NoteSigner("example.test/audit", Ed25519PrivateKey.generate())


def test_a_checkpoint_is_the_three_line_note_signed_as_c2sp_specifies(signer):
    checkpoint = signer.sign(42, ROOT, signed_ns=1)
    text, _, signature_line = checkpoint.note.partition("\n\n")
    assert text + "\n" == f"example.test/audit\n42\n{base64.b64encode(ROOT).decode()}\n"
    dash, name, encoded = signature_line.rstrip("\n").split(" ")
    assert (dash, name) == ("—", "example.test/audit")
    blob = base64.b64decode(encoded)
    public = signer.verifier.public
    assert blob[:4] == hashlib.sha256(b"example.test/audit\n\x01" + public).digest()[:4]
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], (text + "\n").encode())


def test_the_published_key_opens_the_checkpoint(signer):
    key = VerifierKey.parse(signer.verifier.encode())
    opened = key.open(signer.sign(7, ROOT, signed_ns=1).note)
    assert (opened.origin, opened.size, opened.root) == ("example.test/audit", 7, ROOT)


def test_a_note_in_the_reference_signed_note_format_verifies():
    """The signed-note format's reference example (Go's golang.org/x/mod/sumdb/note)."""
    key = VerifierKey.parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    note = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n\n"
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
        "otpRZb6KE6RyyBwJnAM=\n"
    )
    assert key.verify(note).startswith("If you think cryptography")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda note: note.replace("\n42\n", "\n43\n"),
        lambda note: note.replace("example.test/audit\n", "example.test/other\n", 1),
        # Inside the base64 signature, where every bit is data (the last character before
        # the padding holds unused bits, so changing it may change nothing).
        lambda note: note[:-10] + ("A" if note[-10] != "A" else "B") + note[-9:],
        lambda note: note.partition("\n\n")[0] + "\n",
        lambda note: note.replace("\n", "\r\n"),
    ],
    ids=["size", "origin", "signature", "unsigned", "control characters"],
)
def test_a_changed_note_is_refused(signer, tamper):
    note = signer.sign(42, ROOT, signed_ns=1).note
    with pytest.raises(NoteError):
        signer.verifier.open(tamper(note))


def test_another_keys_signature_is_ignored_and_ours_still_required(signer):
    other = NoteSigner("example.test/audit", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="no signature"):
        signer.verifier.open(other.sign(42, ROOT, signed_ns=1).note)
    ours = signer.sign(42, ROOT, signed_ns=1).note
    witness = NoteSigner("witness.test", Ed25519PrivateKey.generate()).sign(42, ROOT, signed_ns=1)
    cosigned = ours + witness.note.partition("\n\n")[2]
    assert signer.verifier.open(cosigned).size == 42


@pytest.mark.parametrize(
    "text",
    [
        "name+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+notbase64!",
        "PeterNeumann+zz+ARpc",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(text):
    with pytest.raises(NoteError):
        VerifierKey.parse(text)


def test_the_key_is_made_once_private_and_then_reused(tmp_path):
    path = tmp_path / "keys" / "log.pem"
    first = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_key(path)
    assert first.public_key().public_bytes_raw() == again.public_key().public_bytes_raw()
