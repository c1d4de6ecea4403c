"""Library versions recorded beside every output."""

from __future__ import annotations

import platform

__all__ = ["library_versions"]


def library_versions() -> dict[str, str]:
    """Versions of biasprobe, Python and the libraries that shape its numbers."""
    import faiss
    import numpy as np
    import pandas as pd
    import PIL
    import sklearn
    import torch

    from biasprobe import __version__

    return {"biasprobe": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "torch": torch.__version__, "faiss": faiss.__version__,
            "scikit-learn": sklearn.__version__, "pillow": PIL.__version__}
