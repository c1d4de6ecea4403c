"""Any model from Python: ``from_module``, 1x1-convolution heads, a named embedding layer, ``py:`` factories."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biasprobe.core.errors import ModelError
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.models import ModelFactory, create_model, from_module

PREP = Preprocessing(16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, 3)


def _squeeze() -> nn.Module:
    """A SqueezeNet-style classifier: a 1x1 convolution to class maps, then global pooling."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Dropout(0.0), nn.Conv2d(6, 4, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip


def test_a_1x1_convolution_head_gives_its_pooled_input_as_the_embedding():
    model = from_module(_squeeze(), name="squeeze", preprocessing=PREP)
    assert model.embedding_layer == "3" and model.num_classes == 4 and model.class_names[0] == "class_0"
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        logits, emb = model(x)
        pooled = model.net[:3](x).mean(dim=(2, 3))
    torch.testing.assert_close(emb, nn.functional.normalize(pooled, dim=1))
    assert logits.shape == (2, 4) and model.embedding_dim() == 6
    assert "averaged over space" in str(model.describe()["layer"])


def test_the_caller_can_name_the_embedding_layer():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))  # fmt: skip
    default = from_module(net, name="a", preprocessing=PREP, class_names=["x", "y", "z"])
    named = from_module(net, name="b", preprocessing=PREP, class_names=["x", "y", "z"], embedding_layer="4")
    assert default.embedding_layer == "6" and default.embedding_dim() == 7
    assert named.embedding_layer == "4" and named.embedding_dim() == 5
    with pytest.raises(ModelError, match="no module 'nope'"):
        from_module(net, name="c", preprocessing=PREP, embedding_layer="nope")


def test_a_net_without_any_head_is_refused_in_one_line():
    with pytest.raises(ModelError, match=r"no nn\.Linear or 1x1 nn\.Conv2d classifier"):
        from_module(nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), name="x", preprocessing=PREP)


def test_a_py_factory_is_built_by_name_with_weights(tmp_path, monkeypatch):
    (tmp_path / "userpkg_models.py").write_text(
        "from torch import nn\nimport torch\nfrom biasprobe.models import Preprocessing, from_module\n"
        "def build():\n    torch.manual_seed(1)\n"
        "    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n"
        "    return from_module(net, name='mine', preprocessing=Preprocessing(16, (0.5,) * 3, (0.5,) * 3, 1.0, 3))\n"
    )
    monkeypatch.chdir(tmp_path)
    plain = create_model("py:userpkg_models:build")
    assert plain.name == "py:userpkg_models:build" and plain.weights_sha256 is None
    state = {k: torch.zeros_like(v) for k, v in plain.net.state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    loaded = ModelFactory("py:userpkg_models:build", tmp_path / "w.pt").build()
    assert loaded.weights_sha256 and loaded.weights_source == str(tmp_path / "w.pt")
    assert all(float(v.abs().sum()) == 0 for v in loaded.net.state_dict().values())
    torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="do not fit"):
        create_model("py:userpkg_models:build", weights=tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="cannot import no_such_pkg_xyz"):
        create_model("py:no_such_pkg_xyz:build")
    with pytest.raises(ModelError, match=r"expected py:package\.module:factory"):
        create_model("py:justamodule")
