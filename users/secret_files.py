"""Secrets made once at first start and kept in a private file, never torn by a crash."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def secret_file(path: Path, make: str) -> str:
    """The content of ``path``, creating it with ``make`` (mode 0600) if it does not exist.

    The secret is written in full to a private staging file first, then linked into place,
    which fails if ``path`` exists: a crash mid-write never leaves an empty or torn secret
    that a later start would take as the password.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(make + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(staging, path)
        _fsync_dir(path.parent)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        staging.unlink(missing_ok=True)
    return make


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable before the account it protects is committed."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
