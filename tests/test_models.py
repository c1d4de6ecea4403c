"""The model registry, the real EfficientNet-Lite0, and torchvision/timm weights files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from biasprobe.core.errors import ModelError
from biasprobe.data.transforms import embed_view, normalise
from biasprobe.models import ModelFactory, create_model, get_entry, list_models


def _classify(model, record) -> tuple[str, float, torch.Tensor]:
    prep = model.preprocessing
    image, _ = record.load()
    x = normalise(torch.from_numpy(embed_view(image, input_size=prep.input_size, crop_pct=prep.crop_pct)), prep.mean, prep.std)
    with torch.inference_mode():
        logits, emb = model(x[None])
    p = logits.softmax(-1)[0]
    top = int(p.argmax())
    return model.class_names[top], float(p[top]), emb[0]


def test_registry_lists_and_resolves_names() -> None:
    names = [e.name for e in list_models()]
    assert {"efficientnet_lite0", "world_vgg", "world_resnet", "tv:ARCH", "timm:ARCH"} <= set(names)
    assert get_entry("tv:resnet18").name == "tv:ARCH"
    assert get_entry("timm:resnet18").name == "timm:ARCH"
    lite = get_entry("efficientnet_lite0").preprocessing
    assert (lite.input_size, lite.mean, lite.crop_pct, lite.max_shift, lite.embed_size) == (224, (0.5,) * 3, 0.875, 32, 168)
    world = get_entry("world_vgg").preprocessing
    assert (world.input_size, world.max_shift, world.embed_size, world.resize_size) == (48, 8, 36, 56)


def test_unknown_names_and_missing_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"unknown model 'resnet50'.*tv:ARCH"):
        get_entry("resnet50")
    with pytest.raises(ModelError, match="weights file not found"):
        create_model("tv:resnet18", weights=tmp_path / "nope.pth")
    with pytest.raises(ModelError, match="torchvision has no classification model"):
        create_model("tv:not_a_net")
    with pytest.raises(ModelError, match="needs --weights"):
        create_model("world_vgg")


def test_efficientnet_lite0_classifies_the_bundled_photos(lite0, photos) -> None:
    by_name = {r.relative.split(".")[0]: r for r in photos}
    name, p, emb = _classify(lite0, by_name["coffee"])
    assert name == "espresso" and p > 0.9
    assert emb.shape == (1280,) and float(emb.norm()) == pytest.approx(1.0, abs=1e-5)
    cat, _, _ = _classify(lite0, by_name["chelsea"])
    assert cat in {"tiger cat", "Egyptian cat", "tabby"}
    assert lite0.weights_sha256 and len(lite0.weights_sha256) == 64
    assert lite0.embedding_layer == "classifier"


def test_embedding_is_the_input_of_the_last_linear_layer(lite0) -> None:
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        logits, emb = lite0(x)
        pooled = lite0.net.forward_head(lite0.net.forward_features(x), pre_logits=True)
        direct = lite0.net.classifier(pooled)
    assert torch.allclose(emb, torch.nn.functional.normalize(pooled, dim=1), atol=1e-6)
    assert torch.allclose(logits, direct, atol=1e-5)


def test_torchvision_weights_file_round_trip_and_mismatch(tmp_path: Path) -> None:
    import torchvision

    net = torchvision.models.get_model("resnet18", weights=None, num_classes=7)
    good = tmp_path / "resnet18_7.pth"
    torch.save({"state_dict": net.state_dict()}, good)
    model = create_model("tv:resnet18", weights=good)
    assert model.num_classes == 7 and model.embedding_layer == "fc"
    assert model.preprocessing.input_size == 224 and model.preprocessing.crop_pct == pytest.approx(224 / 256)
    bad = tmp_path / "wrong_arch.pth"
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(), bad)
    with pytest.raises(ModelError, match=r"wrong_arch\.pth do not fit"):
        create_model("tv:resnet18", weights=bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    with pytest.raises(ModelError, match=r"cannot read weights .*junk\.pth"):
        create_model("tv:resnet18", weights=junk)


def test_timm_weights_file(tmp_path: Path) -> None:
    import timm

    net = timm.create_model("resnet10t", pretrained=False, num_classes=5)
    path = tmp_path / "r10.pth"
    torch.save(net.state_dict(), path)
    model = create_model("timm:resnet10t", weights=path)
    assert model.num_classes == 5
    with torch.inference_mode():
        logits, emb = model(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 5) and emb.shape == (1, net.num_features)
    with pytest.raises(ModelError, match="no weights for timm:resnet10t"):
        create_model("timm:resnet10t")


def test_model_factory_pickles_and_builds(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "resnet18_3.pth"
    torch.save(torchvision.models.get_model("resnet18", weights=None, num_classes=3).state_dict(), path)
    factory = pickle.loads(pickle.dumps(ModelFactory("tv:resnet18", path)))
    assert factory == ModelFactory("tv:resnet18", path)
    model = factory.build()
    assert model.name == "tv:resnet18" and model.num_classes == 3 and not model.training
    assert model.weights_source == str(path)
    with pytest.raises(ModelError, match="needs --weights"):
        ModelFactory("world_vgg").build()


def test_model_factory_for_recorded_prefers_flags_then_the_recorded_file(tmp_path: Path) -> None:
    recorded = tmp_path / "weights.pth"
    recorded.write_bytes(b"x")
    mine = tmp_path / "mine.pth"
    assert ModelFactory.for_recorded("tv:resnet18", str(recorded)) == ModelFactory("tv:resnet18", str(recorded))
    assert ModelFactory.for_recorded("tv:resnet18", str(tmp_path / "moved.pth")) == ModelFactory("tv:resnet18", None)
    assert ModelFactory.for_recorded("timm:resnet18", "local timm cache") == ModelFactory("timm:resnet18", None)
    assert ModelFactory.for_recorded("tv:resnet18", None) == ModelFactory("tv:resnet18", None)
    assert ModelFactory.for_recorded("tv:resnet18", str(recorded), weights=mine) == ModelFactory("tv:resnet18", mine)
    # another model never inherits the recorded weights
    assert ModelFactory.for_recorded("tv:resnet18", str(recorded), model="tv:resnet34") == ModelFactory("tv:resnet34", None)
    assert ModelFactory.for_recorded("x", str(recorded), model="y", weights=mine) == ModelFactory("y", mine)
