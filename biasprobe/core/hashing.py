"""Content digests: image ids (docs/protocols.md section 4) and file digests for provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256", "image_id", "sha256_and_size", "short_digest"]


def image_id(data: bytes) -> str:
    """First 16 hex digits of the SHA-1 of a file's bytes."""
    return hashlib.sha1(data).hexdigest()[:16]


def sha256_and_size(path: str | Path) -> tuple[str, int]:
    """SHA-256 (hex) and size in bytes of a file, read in 4 MiB blocks (memory stays flat)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, streamed."""
    return sha256_and_size(path)[0]


def short_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256: enough to tell settings apart."""
    return file_sha256(path)[:16]
