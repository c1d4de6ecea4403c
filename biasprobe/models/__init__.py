"""Models: a registry of names, each carrying its preprocessing and giving logits + embedding."""

from biasprobe.core.preprocessing import Preprocessing
from biasprobe.models.factory import ModelFactory
from biasprobe.models.python import from_module
from biasprobe.models.registry import create_model, get_entry, list_models
from biasprobe.models.spec import ModelEntry, ProbeModel

__all__ = ["ModelEntry", "ModelFactory", "Preprocessing", "ProbeModel", "create_model", "from_module", "get_entry", "list_models"]
