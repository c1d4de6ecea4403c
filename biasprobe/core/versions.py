"""Library versions recorded beside every output."""

from __future__ import annotations

import importlib
import platform

__all__ = ["library_versions"]

# name in the record -> module
_LIBRARIES = {"numpy": "numpy", "pandas": "pandas", "torch": "torch", "faiss": "faiss", "scikit-learn": "sklearn",
              "pillow": "PIL"}  # fmt: skip


def _version(module: str) -> str:
    """A module's version, or "not installed" (a stage that does not use it still runs and says so)."""
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:
        return "not installed"


def library_versions() -> dict[str, str]:
    """Versions of biasprobe, Python and the libraries that shape its numbers."""
    from biasprobe import __version__

    return {"biasprobe": __version__, "python": platform.python_version(),
            **{name: _version(module) for name, module in _LIBRARIES.items()}}  # fmt: skip
