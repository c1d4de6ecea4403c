"""Any model from Python: ``from_module`` wraps an ``nn.Module``, and ``--model
py:package.module:factory`` imports a factory that returns such a model.

```python
from torch import nn
from biasprobe.models import Preprocessing, from_module

def my_model():                       # in mypkg/nets.py
    net = nn.Sequential(...)          # any classifier taking (N, 3, S, S)
    prep = Preprocessing(input_size=64, mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=0.875, max_shift=8)
    return from_module(net, name="mine", preprocessing=prep)
```

``biasprobe invariance --model py:mypkg.nets:my_model --weights FILE ...`` then builds it in any
stage (the current folder is importable); ``--weights`` loads a state_dict into the module.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import torch
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.core.hashing import file_sha256
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.models.spec import ProbeModel
from biasprobe.models.weights import load_into, read_state_dict

__all__ = ["build_python", "from_module"]


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def from_module(
    net: nn.Module,
    *,
    name: str,
    preprocessing: Preprocessing,
    class_names: list[str] | None = None,
    embedding_layer: str | None = None,
) -> ProbeModel:
    """A model every stage accepts, from any classifier ``net`` taking ``(N, 3, S, S)`` images.

    ``preprocessing`` gives S, the normalisation, ``crop_pct`` and the max shift. The embedding
    (docs/protocols.md section 4.2) is the input of ``embedding_layer`` (a module path), by default
    of the last ``nn.Linear``, else the pooled input of the last 1x1 convolution. Without
    ``class_names`` the classes are ``class_0 ..``, as many as the network's outputs.
    """
    if not isinstance(net, nn.Module):
        raise ModelError(f"from_module needs a torch nn.Module, got {type(net).__name__}")
    if not isinstance(preprocessing, Preprocessing):
        raise ModelError(f"from_module needs a biasprobe Preprocessing, got {type(preprocessing).__name__}")
    net = net.eval()
    if class_names is None:
        size = preprocessing.input_size
        param = next(iter(net.parameters()), None)
        with torch.inference_mode():
            logits = net(torch.zeros(1, 3, size, size, device=param.device if param is not None else None))
        if not isinstance(logits, torch.Tensor) or logits.dim() < 2:
            raise ModelError(f"{name}: the network must return logits (N, classes), got {type(logits).__name__}")
        class_names = [f"class_{i}" for i in range(int(logits.flatten(1).shape[1]))]
    model = ProbeModel(net, name=name, preprocessing=preprocessing, class_names=list(class_names), weights_sha256=None,
                       weights_source="python module", config={"architecture": f"python:{type(net).__qualname__}"},
                       embedding_layer=embedding_layer)  # fmt: skip
    return model.eval()


def _import_factory(spec: str, name: str) -> object:
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"--model {name}: expected py:package.module:factory")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(f"--model {name}: cannot import {module_name} ({_one_line(exc)})") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"--model {name}: {module_name} has no function {attr!r}")
    return factory


def build_python(name: str, weights: Path | None) -> ProbeModel:
    spec = name.split(":", 1)[1]
    factory = _import_factory(spec, name)
    try:
        model = factory()  # type: ignore[operator]
    except ModelError as exc:
        raise ModelError(f"the factory {spec} failed: {exc}") from exc
    except Exception as exc:  # the user's code: say whose it is, in one line
        raise ModelError(f"the factory {spec} failed: {_one_line(exc)}") from exc
    if not isinstance(model, ProbeModel):
        raise ModelError(f"the factory {spec} returned {type(model).__name__}; it must return "
                         "biasprobe.models.from_module(net, name=..., preprocessing=...)")  # fmt: skip
    model.name = name
    if weights is not None:
        load_into(model.net, read_state_dict(weights), source=weights)
        model.weights_sha256 = file_sha256(weights)
        model.weights_source = str(weights)
    return model.eval()
