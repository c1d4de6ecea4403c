"""Training the world CNNs: deterministic for a seed, checkpoints load through the registry,
the antialias and augment options change what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from timm.layers import BlurPool2d
from torch import nn

from biasprobe.cli import main
from biasprobe.core.errors import BiasprobeError, InputError, ModelError
from biasprobe.models import create_model
from biasprobe.world import WorldConfig, make_world
from biasprobe.world.checkpoint import read_checkpoint, write_checkpoint
from biasprobe.world.nets import WORLD_PREPROCESSING, build_net, net_config
from biasprobe.world.train import _batch_input, load_split, rescale_centre, train_world_model

TINY = WorldConfig(digits=40, train_placements=2, test_placements=1)


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world(tmp_path_factory.mktemp("w") / "world", TINY).root


def _train(world: Path, out: Path, **kw: object):
    opts = {"arch": "world_vgg", "epochs": 1, "batch_size": 16, "progress": False, **kw}
    return train_world_model(world, out=out, **opts)  # type: ignore[arg-type]


def test_same_seed_same_weights_other_seed_differs(tiny_world: Path, tmp_path: Path) -> None:
    a = _train(tiny_world, tmp_path / "a.pt", augment="crop")
    b = _train(tiny_world, tmp_path / "b.pt", augment="crop")
    c = _train(tiny_world, tmp_path / "c.pt", augment="crop", seed=1)
    sa, sb, sc = (read_checkpoint(r.path)[0] for r in (a, b, c))
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("arch", ["world_vgg", "world_resnet"])
def test_checkpoint_round_trip_through_registry(arch: str, tiny_world: Path, tmp_path: Path) -> None:
    result = _train(tiny_world, tmp_path / f"{arch}.pt", arch=arch)
    model = create_model(arch, weights=result.path)
    assert model.preprocessing == WORLD_PREPROCESSING
    assert model.class_names == [str(i) for i in range(10)]
    config = model.config
    assert config["arch"] == arch and config["epochs"] == 1 and config["augment"] is None
    assert config["antialias"] is False and config["seed"] == 0
    assert config["world"]["digest"] == __import__("hashlib").sha256((tiny_world / "world.json").read_bytes()).hexdigest()
    assert 0.0 <= config["train_accuracy"] <= 1.0 and config["test_accuracy"] is not None
    # the wrapped net gives the same logits as one built from the config and loaded by hand
    state, cfg = read_checkpoint(result.path)
    net = build_net(cfg)
    net.load_state_dict(state)
    net.eval()
    data = load_split(tiny_world / "test", canvas=56)
    x = _batch_input(data.images[:8], augment=None, size=48, gen=torch.Generator())
    with torch.inference_mode():
        logits, emb = model(x)
        assert torch.allclose(logits, net(x), atol=1e-5)
    expected_dim = 128 if arch == "world_vgg" else 8 * 16
    assert emb.shape == (8, expected_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(8), atol=1e-5)
    with pytest.raises(BiasprobeError, match="holds"):
        create_model("world_resnet" if arch == "world_vgg" else "world_vgg", weights=result.path)


def test_training_learns(tiny_world: Path, tmp_path: Path) -> None:
    result = _train(tiny_world, tmp_path / "m.pt", arch="world_resnet", epochs=4)
    assert result.train_accuracy > 0.5  # chance is 0.1


def _strides(net: nn.Module) -> list[tuple[str, int]]:
    found = []
    for m in net.modules():
        stride = getattr(m, "stride", 1)
        stride = stride[0] if isinstance(stride, tuple) else stride
        if stride > 1:
            found.append((type(m).__name__, stride))
    return found


@pytest.mark.parametrize("arch", ["world_vgg", "world_resnet"])
def test_antialias_puts_blurpool_before_every_stride(arch: str) -> None:
    plain = build_net(net_config(arch))
    smooth = build_net(net_config(arch, antialias=True))
    assert not any(isinstance(m, BlurPool2d) for m in plain.modules())
    assert {kind for kind, _ in _strides(plain)} <= {"Conv2d", "MaxPool2d"} and _strides(plain)
    assert {kind for kind, _ in _strides(smooth)} == {"BlurPool2d"}
    x = torch.randn(2, 3, 48, 48)
    assert plain.eval()(x).shape == smooth.eval()(x).shape == (2, 10)
    # same parameters: the blur is a fixed filter, not a weight
    assert [p.shape for p in plain.parameters()] == [p.shape for p in smooth.parameters()]


def test_total_strides() -> None:
    x = torch.randn(1, 3, 48, 48)
    vgg = build_net(net_config("world_vgg")).eval()
    assert vgg.features(x).shape[-1] == 6  # stride 8, then flatten + FC
    resnet = build_net(net_config("world_resnet")).eval()
    assert resnet.stages(resnet.stem(x)).shape[-1] == 3  # stride 16, then global average pooling


def test_checkpoint_configs_fill_defaults_and_refuse_bad_settings(tmp_path: Path) -> None:
    net = build_net({"arch": "world_vgg", "classes": ["a", "b", "c"], "preprocessing": {"input_size": 32}})
    assert net.fc.out_features == 3 and net.head[1].in_features == 64 * 4 * 4
    path = write_checkpoint(net.state_dict(), {"arch": "world_vgg", "num_classes": 3, "input_size": 32}, tmp_path / "c.pt")
    state, config = read_checkpoint(path)
    assert config == {"arch": "world_vgg", "num_classes": 3, "input_size": 32}
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ModelError, match="'width' must be a number"):
        build_net({"arch": "world_resnet", "width": [16]})
    with pytest.raises(ModelError, match="no option"):
        net_config("world_resnet", hidden=64)


def test_augment_inputs(tiny_world: Path) -> None:
    raw = load_split(tiny_world / "train", canvas=56).images[:16]
    canvas = raw.float() / 255 * 2 - 1
    centre = _batch_input(raw, augment=None, size=48, gen=torch.Generator())
    assert torch.equal(centre, canvas[:, :, 4:52, 4:52])
    crops = _batch_input(raw, augment="crop", size=48, gen=torch.Generator().manual_seed(0))
    offsets = set()
    for img, out in zip(canvas, crops, strict=True):
        hits = [(i, j) for i in range(9) for j in range(9) if torch.equal(img[:, i : i + 48, j : j + 48], out)]
        assert hits, "a crop-augmented input is not a 48-pixel window of the canvas"
        offsets.add(hits[0])
    assert len(offsets) > 1
    scaled = _batch_input(raw, augment="scale", size=48, gen=torch.Generator().manual_seed(0))
    assert scaled.shape == centre.shape and not torch.allclose(scaled, centre)
    unit = rescale_centre(raw.float() / 255, torch.ones(16), size=48)
    assert torch.allclose(unit, raw[:, :, 4:52, 4:52].float() / 255, atol=1e-6)
    bigger = rescale_centre(raw.float() / 255, torch.full((16,), 1.25), size=48)
    ink = lambda t: (t > 0.1).float().sum()  # noqa: E731
    assert ink(bigger) > 1.3 * ink(unit)


def test_bad_inputs(tmp_path: Path, tiny_world: Path) -> None:
    with pytest.raises(InputError, match="not a biasprobe world"):
        train_world_model(tmp_path, arch="world_vgg", out=tmp_path / "x.pt")
    with pytest.raises(InputError, match="--augment"):
        train_world_model(tiny_world, arch="world_vgg", out=tmp_path / "x.pt", augment="flip")
    assert not (tmp_path / "x.pt").exists()


def test_cli_train(tiny_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "aa.pt"
    argv = ["train", "--data", str(tiny_world), "--arch", "world_resnet", "--out", str(out), "--epochs", "1",
            "--antialias", "--augment", "scale", "--batch-size", "16", "--threads", "1", "--width", "8"]
    assert main(argv) == 0
    assert "--model world_resnet --weights" in capsys.readouterr().out
    config = json.loads(torch.load(out, weights_only=True)["config"])
    assert config["antialias"] is True and config["augment"] == "scale" and config["width"] == 8
    model = create_model("world_resnet", weights=out)
    assert any(isinstance(m, BlurPool2d) for m in model.modules())
    assert main(["train", "--data", str(tmp_path), "--arch", "world_vgg", "--out", str(tmp_path / "y.pt")]) == 1
    assert "not a biasprobe world" in capsys.readouterr().err
