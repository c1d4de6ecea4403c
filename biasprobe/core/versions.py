"""Library versions recorded beside every output."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys

__all__ = ["library_versions"]

# name in the record -> module
_LIBRARIES = {"numpy": "numpy", "pandas": "pandas", "torch": "torch", "faiss": "faiss", "scikit-learn": "sklearn",
              "pillow": "PIL"}  # fmt: skip


# module -> the distributions that may install it, for a module this process has not imported
_DISTRIBUTIONS = {"numpy": ("numpy",), "pandas": ("pandas",), "torch": ("torch",), "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
                  "sklearn": ("scikit-learn",), "PIL": ("pillow", "Pillow")}  # fmt: skip


def _version(module: str) -> str:
    """A module's version, or "not installed" (a stage that does not use it still runs and says so).

    A module already imported gives its ``__version__``; one that is not is not imported just for
    its version (scikit-learn with SciPy and FAISS cost a stage that never uses them 1-2 s): its
    installed distribution's version is read instead, the same string for these libraries'
    wheels, and the module is imported only when no distribution is found."""
    loaded = sys.modules.get(module)
    if loaded is None:
        for name in _DISTRIBUTIONS.get(module, ()):
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
    try:
        return str((loaded or importlib.import_module(module)).__version__)
    except ImportError:
        return "not installed"


def library_versions() -> dict[str, str]:
    """Versions of biasprobe, Python and the libraries that shape its numbers."""
    from biasprobe import __version__

    return {"biasprobe": __version__, "python": platform.python_version(),
            **{name: _version(module) for name, module in _LIBRARIES.items()}}  # fmt: skip
