"""Models: a registry of names, each carrying its preprocessing and giving logits + embedding."""

from .registry import ModelEntry, create_model, get_entry, list_models
from .spec import Preprocessing, ProbeModel

__all__ = ["ModelEntry", "Preprocessing", "ProbeModel", "create_model", "get_entry", "list_models"]
