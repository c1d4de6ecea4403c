"""``biasprobe index build`` and ``biasprobe score`` end to end: the table contract and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from _typicality_data import write_photo_sets

from biasprobe.cli import main
from biasprobe.data.sources import bundled_photo_paths
from biasprobe.models.catalogue import LITES
from biasprobe.models.imagenet import _lite_weights_path
from biasprobe.models.weights import read_state_dict


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    train, test = write_photo_sets(root)
    rows = [(p.name, 10, 20, 110, 120, 400, 300) for p in sorted(train.iterdir())]
    pd.DataFrame(rows, columns=["path", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height"]).assign(
        xmin=lambda f: f.xmin + np.arange(len(f)) * 7, xmax=lambda f: f.xmax + np.arange(len(f)) * 7).to_csv(root / "boxes.csv", index=False)
    test_rows = [(p.name, 150, 100, 250, 200, 400, 300) for p in sorted(test.iterdir())]
    pd.DataFrame(test_rows, columns=["path", "xmin", "ymin", "xmax", "ymax", "image_width", "image_height"]).to_csv(root / "test_boxes.csv", index=False)
    code = main(["index", "build", "--images", str(train), "--model", "efficientnet_lite0", "--boxes", str(root / "boxes.csv"),
                 "--out", str(root / "idx"), "--batch-size", "8", "--threads", "2"])
    assert code == 0
    return {"root": root, "train": train, "test": test, "index": root / "idx"}


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    err = stderr.strip().splitlines()[-1].split("\r")[-1]  # after any progress bar
    assert err.startswith("biasprobe: error: ")
    return err


def test_build_writes_the_index_folder(cli_index: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    folder = cli_index["index"]
    meta = json.loads((folder / "meta.json").read_text())
    for key in ("model", "weights_sha256", "layer", "preprocessing", "normalisation", "dim", "count", "factory",
                "versions", "k_max", "reference", "boxes", "command"):
        assert key in meta, key
    assert meta["count"] == 20 and meta["boxes"]["count"] == 18  # one box per distinct image
    assert meta["command"][:3] == ["biasprobe", "index", "build"]
    for name in ("index.faiss", "ids.parquet", "reference.npy", "boxes.parquet", "shards/emb_0000.npy", "shards/ids_0000.parquet"):
        assert (folder / name).is_file(), name
    assert np.load(folder / "reference.npy").shape == (18, 17)


def test_score_writes_the_table_contract(cli_index: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = cli_index["root"] / "scores.parquet"
    assert main(["score", "--index", str(cli_index["index"]), "--images", str(cli_index["test"]), "--out", str(out),
                 "--k", "4", "--boxes", str(cli_index["root"] / "test_boxes.csv"), "--threads", "2"]) == 0
    assert "scored 10 images" in capsys.readouterr().out
    frame = pd.read_parquet(out)
    expected = ["image_id", "path", "label", "label_name", "knn_dist", "atypicality", "in_train", "neighbor_ids",
                "neighbor_paths", "neighbor_dists", "box_cx", "box_cy", "box_log_size", "pose_atypicality"]
    assert list(frame.columns) == expected
    schema = pq.read_schema(out)
    assert str(schema.field("image_id").type) in ("string", "large_string") and str(schema.field("label").type) == "int64"
    assert str(schema.field("neighbor_ids").type).replace("large_", "") == "list<element: string>"
    assert str(schema.field("neighbor_dists").type) == "list<element: double>"
    assert schema.field("in_train").type == "bool"
    assert frame["image_id"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert frame["neighbor_ids"].map(len).eq(4).all() and frame["label"].isna().all()
    assert frame["pose_atypicality"].between(0, 1).all()
    assert frame.set_index("path").loc["astronaut_again.png", "in_train"]
    summary = json.loads((cli_index["root"] / "scores.summary.json").read_text())
    assert summary["k"] == 4 and summary["images"] == 10 and summary["in_train"] == 1 and summary["skipped"] == 1
    assert summary["index"]["model"] == "efficientnet_lite0" and set(summary["knn_dist_quantiles"]) >= {"0", "0.5", "1"}
    assert summary["command"][:2] == ["biasprobe", "score"] and "faiss" in summary["versions"]
    skipped = pd.read_parquet(cli_index["root"] / "scores.skipped.parquet")
    assert list(skipped.columns) == ["path", "reason"] and list(skipped["path"]) == ["broken.jpg"]


def test_user_errors_are_one_line(cli_index: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    idx, test = str(cli_index["index"]), str(cli_index["test"])
    out = str(tmp_path / "s.parquet")
    assert "no index at" in _error(capsys, ["score", "--index", str(tmp_path / "none"), "--images", test, "--out", out])
    err = _error(capsys, ["score", "--index", idx, "--images", test, "--out", out, "--k", "18"])
    assert "k must be between 1 and 17" in err and "got 18" in err
    (tmp_path / "empty").mkdir()
    assert "no images found" in _error(capsys, ["score", "--index", idx, "--images", str(tmp_path / "empty"), "--out", out])
    assert "no images found" in _error(capsys, ["index", "build", "--images", str(tmp_path / "empty"), "--model",
                                                "efficientnet_lite0", "--out", str(tmp_path / "i2")])
    state = read_state_dict(_lite_weights_path(LITES["efficientnet_lite0"]))
    first = next(iter(state))
    state[first] = state[first] + 1e-3  # other weights: the same architecture, a different model
    torch.save(state, tmp_path / "other.pt")
    err = _error(capsys, ["score", "--index", idx, "--images", test, "--out", out, "--model", "efficientnet_lite0",
                          "--weights", str(tmp_path / "other.pt")])
    assert "different model or preprocessing" in err and "weights_sha256" in err and "preprocessing" not in err.split("(", 1)[1]
    assert not Path(out).exists()


def test_limit_and_factory_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = [str(p) for p in bundled_photo_paths().values()]
    assert len(photos) == 9
    assert main(["index", "build", "--images", "builtin:photos", "--model", "efficientnet_lite0", "--out", str(tmp_path / "i"),
                 "--limit", "6", "--factory", "HNSW8", "--threads", "2"]) == 0
    assert "6 images" in capsys.readouterr().out
    meta = json.loads((tmp_path / "i" / "meta.json").read_text())
    assert meta["factory"] == "HNSW8" and meta["search_params"] == "efSearch=128" and meta["count"] == 6
    err = _error(capsys, ["index", "build", "--images", "builtin:photos", "--model", "efficientnet_lite0",
                          "--out", str(tmp_path / "j"), "--factory", "Nonsense77"])
    assert "FAISS cannot build the factory string 'Nonsense77'" in err
