"""Content digests: image ids (docs/protocols.md section 4) and file digests for provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256", "image_id", "short_digest"]


def image_id(data: bytes) -> str:
    """First 16 hex digits of the SHA-1 of a file's bytes."""
    return hashlib.sha1(data).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def short_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256: enough to tell settings apart."""
    return file_sha256(path)[:16]
