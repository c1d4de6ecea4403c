"""biasprobe: why is an image classifier not invariant to small shifts and rescales?"""

from biasprobe.engine.malloc_tuning import tune_malloc

tune_malloc()  # before torch allocates anything; see malloc_tuning.py

__version__ = "0.1.0"

__all__ = ["__version__"]
