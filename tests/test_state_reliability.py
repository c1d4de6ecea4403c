"""Reliability of stored state and of what users read (docs/reliability.md): damaged index
files and finished units are never trusted, no usable image is one error in every stage, bad
output paths are refused before the work, and each error line names the real cause."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _report_data import write_stage_files
from _typicality_data import tiny_model, write_noise_images
from PIL import Image
from torch import nn

from biasprobe.cli import main
from biasprobe.core.errors import InputError, ModelError
from biasprobe.core.io import companion, read_table, write_table
from biasprobe.core.preprocessing import Preprocessing
from biasprobe.core.records import read_json_object
from biasprobe.core.schemas import INVARIANCE_TABLE, conform
from biasprobe.data.sources import open_source
from biasprobe.engine.runtime import Runtime
from biasprobe.index import shards as embedding
from biasprobe.index.build import build_index
from biasprobe.index.shards import embed_to_shards
from biasprobe.index.training_index import TrainingIndex
from biasprobe.invariance import measure_invariance, parts_dir_for
from biasprobe.invariance import work as invariance_work
from biasprobe.invariance.protocols import ProtocolParams
from biasprobe.models import create_model
from biasprobe.models.spec import ProbeModel
from biasprobe.models.weights import read_state_dict
from biasprobe.world.checkpoint import write_checkpoint
from biasprobe.world.nets import WORLD_PREPROCESSING, build_net, net_config

RUNTIME = Runtime.create(threads=2)
REBUILD = "rebuild it with 'biasprobe index build'"


# ---------------------------------------------------------------- helpers
def _cli(*args: object, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess; ``code`` runs first (e.g. to simulate a full disk)."""
    argv = [str(a) for a in args]
    if code is None:
        return subprocess.run([sys.executable, "-m", "biasprobe", *argv], capture_output=True, text=True)
    script = f"{code}\nimport sys\nfrom biasprobe.cli import main\nsys.exit(main({argv!r}))\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a command that failed as a user error (exit 1, no traceback)."""
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [line.split("\r")[-1] for line in done.stderr.strip().splitlines()]
    errors = [line for line in lines if line.startswith("biasprobe: error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], done.stderr[-2000:]
    return errors[0]


def _checkpoint(arch: str, path: Path) -> Path:
    config = {**net_config(arch), "arch": arch, "classes": [str(i) for i in range(10)],
              "preprocessing": WORLD_PREPROCESSING.to_dict()}
    torch.manual_seed(0)
    return write_checkpoint(build_net(config).state_dict(), config, path)


def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name(a.name + ".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def _flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A world_vgg checkpoint (and a world_resnet one), training images with one broken file,
    test images, a folder of only broken files, and an index built in shards of 8 (8, 8, 5)."""
    root = tmp_path_factory.mktemp("state")
    vgg, resnet = _checkpoint("world_vgg", root / "vgg.pt"), _checkpoint("world_resnet", root / "resnet.pt")
    train = write_noise_images(root / "train", 20, size=56)
    (train / "zz_broken.png").write_bytes(b"not a png at all")
    test = write_noise_images(root / "test", 6, seed=1, size=56)
    bad = root / "bad"
    bad.mkdir()
    for name in ("a_broken.png", "b_broken.png"):
        (bad / name).write_bytes(b"not a png either")
    build_index(open_source(train), create_model("world_vgg", weights=vgg), root / "index", runtime=RUNTIME,
                batch_size=8, shard_size=8, show_progress=False)
    return {"root": root, "vgg": vgg, "resnet": resnet, "train": train, "test": test, "bad": bad, "index": root / "index"}


def _index_copy(world: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(world["index"], copy)
    return copy


# ---------------------------------------------------------------- 1. damaged index state
def test_meta_records_every_file_of_the_index(world: dict[str, Path]) -> None:
    import hashlib

    folder = world["index"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format_version"] == 3
    on_disk = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    assert set(meta["files"]) == set(on_disk) - {"meta.json"}
    assert {"shards/emb_0000.npy", "shards/done/000002.json", "index.faiss", "skipped.parquet"} <= set(meta["files"])
    for name, digest in meta["files"].items():
        data = on_disk[name].read_bytes()
        assert digest == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    TrainingIndex.open(folder).files.verify_all()


def test_swapped_shards_are_refused_by_score(world: dict[str, Path], tmp_path: Path) -> None:
    """Two same-sized shards swapped gave other distances and atypicality with exit 0."""
    copy = _index_copy(world, tmp_path)
    assert (copy / "shards/emb_0000.npy").stat().st_size == (copy / "shards/emb_0001.npy").stat().st_size
    _swap(copy / "shards/emb_0000.npy", copy / "shards/emb_0001.npy")
    out = tmp_path / "s.parquet"
    line = _one_line(_cli("score", "--index", copy, "--images", world["test"], "--out", out, "--k", "3", "--threads", "2"))
    assert re.fullmatch(rf"biasprobe: error: index {re.escape(str(copy))} is damaged: shards/emb_000[01]\.npy has changed "
                        rf"since it was written \(.*swapped with another file\); {re.escape(REBUILD)}", line), line
    assert not out.exists() and not companion(out, "summary").exists()


def _damage(copy: Path, how: str) -> str:
    """Damage the copied index; the file name (and what) the refusal must say."""
    if how == "swap shards":
        _swap(copy / "shards/emb_0000.npy", copy / "shards/emb_0001.npy")
        return r"shards/emb_000[01]\.npy has changed since it was written"
    if how == "edit a shard":
        _flip_byte(copy / "shards/emb_0002.npy", 0.9)  # a vector, not the header
        return r"shards/emb_0002\.npy has changed since it was written"
    if how == "edit index.faiss":
        _flip_byte(copy / "index.faiss", 0.6)
        return r"index\.faiss has changed since it was written"
    if how == "edit reference.npy":
        _flip_byte(copy / "reference.npy", 0.99)
        return r"reference\.npy has changed since it was written"
    if how == "truncate ids.parquet":
        data = (copy / "ids.parquet").read_bytes()
        (copy / "ids.parquet").write_bytes(data[: len(data) // 2])
        return rf"ids\.parquet is {len(data) // 2:,} bytes, {len(data):,} when it was written \(truncated"
    if how == "delete a shard's ids":
        (copy / "shards/ids_0001.parquet").unlink()
        return r"shards/ids_0001\.parquet is missing"
    if how == "replace skipped.parquet":
        write_table(pd.DataFrame({"path": ["x.png"], "reason": ["made up"]}), copy / "skipped.parquet")
        return r"skipped\.parquet is [\d,]+ bytes, [\d,]+ when it was written"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["swap shards", "edit a shard", "edit index.faiss", "edit reference.npy",
                                 "truncate ids.parquet", "delete a shard's ids", "replace skipped.parquet"])
def test_every_damaged_index_file_is_refused_before_use(world: dict[str, Path], tmp_path: Path, how: str) -> None:
    copy = _index_copy(world, tmp_path)
    queries = np.concatenate([np.load(p) for p in sorted((world["index"] / "shards").glob("emb_*.npy"))])
    expected = _damage(copy, how)
    with pytest.raises(InputError, match=rf"^index {re.escape(str(copy))} is damaged: {expected}.*; {re.escape(REBUILD)}$"):
        TrainingIndex.open(copy).knn_dist(queries, k=3)


def test_shards_are_checked_once_before_first_use_not_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening does not hash the embedding shards (an approximate index: no exact-search screen);
    a query checks the shards it reads, each once."""
    from biasprobe.index import files as index_files

    folder = write_noise_images(tmp_path / "imgs", 30)
    build_index(open_source(folder), tiny_model(), tmp_path / "idx", runtime=RUNTIME, factory="HNSW8", batch_size=8,
                shard_size=10, show_progress=False, workers=0)
    hashed: list[str] = []
    real = index_files.problem

    def counting(path: Path, digest: object, *, contents: bool = True) -> str | None:
        if contents:  # a size check is free; count the reads
            hashed.append(Path(path).name)
        return real(path, digest, contents=contents)

    monkeypatch.setattr(index_files, "problem", counting)
    index = TrainingIndex.open(tmp_path / "idx")
    assert "index.faiss" in hashed and not [n for n in hashed if n.startswith("emb_")]
    stored = np.load(tmp_path / "idx/shards/emb_0001.npy")
    index.knn_dist(stored[:2], k=3)
    index.knn_dist(stored[2:4], k=3)
    shards = [n for n in hashed if n.startswith("emb_")]
    assert "emb_0001.npy" in shards and len(shards) == len(set(shards))  # each shard checked once


# ---------------------------------------------------------------- 2. damaged resumable runs
PREP = Preprocessing(16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.875, 3)
PARAMS = ProtocolParams(max_shift=3, embed_size=10, input_size=16, pairs_per_image=2, run_seed=0)


def _tiny_classifier() -> ProbeModel:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, 5))
    return ProbeModel(net, name="tiny", preprocessing=PREP, class_names=list("abcde"), weights_sha256=None, weights_source="test")


def _measure(images: Path, parts: Path | None):
    return measure_invariance(_tiny_classifier(), open_source(images), protocols=["crop", "zhang"], params=PARAMS,
                              runtime=RUNTIME, batch_size=5, chunk_images=3, progress=False, workers=0, parts_dir=parts)


@pytest.fixture(scope="module")
def inv_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_noise_images(tmp_path_factory.mktemp("inv"), 9, size=24)


@pytest.mark.parametrize(("damage", "again"), [("swap two parts", [0, 1]), ("edit one", [2]), ("delete one", [1])])
def test_damaged_invariance_parts_are_measured_again(inv_images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture, damage: str, again: list[int]) -> None:
    whole = _measure(inv_images, None)
    parts = tmp_path / "parts"
    _measure(inv_images, parts)
    if damage == "swap two parts":
        _swap(parts / "part_000000.parquet", parts / "part_000001.parquet")
        named = "part_000000.parquet"
    elif damage == "edit one":  # still a valid table, with other numbers
        views = parts / "part_000002.views.parquet"
        write_table(read_table(views).assign(top1=0), views)
        named = "part_000002.views.parquet"
    else:
        (parts / "part_000001.skipped.parquet").unlink()
        named = "part_000001.skipped.parquet is missing"
    ran: list[int] = []
    real = invariance_work.write_part
    monkeypatch.setattr(invariance_work, "write_part", lambda folder, unit, part: (ran.append(unit), real(folder, unit, part)))
    with caplog.at_level("WARNING"):
        resumed = _measure(inv_images, parts)
    assert ran == again
    assert named in caplog.text and "is run again" in caplog.text
    pd.testing.assert_frame_equal(resumed.images, whole.images)
    pd.testing.assert_frame_equal(resumed.views, whole.views)


@pytest.mark.parametrize(("damage", "again"), [("swap two shards", [0, 1]), ("edit ids", [2]), ("delete skipped", [3])])
def test_damaged_embedding_shards_are_embedded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str,
                                                     again: list[int]) -> None:
    source = open_source(write_noise_images(tmp_path / "imgs", 40))
    model = RUNTIME.prepare(tiny_model())
    kwargs = {"batch_size": 4, "shard_size": 10, "show_progress": False, "workers": 0}
    full = embed_to_shards(source.records, model, RUNTIME, tmp_path / "full", **kwargs)
    folder = tmp_path / "part"
    embed_to_shards(source.records, model, RUNTIME, folder, **kwargs)
    if damage == "swap two shards":
        _swap(folder / "emb_0000.npy", folder / "emb_0001.npy")
    elif damage == "edit ids":
        write_table(read_table(folder / "ids_0002.parquet").assign(label_name="edited"), folder / "ids_0002.parquet")
    else:
        (folder / "skipped_0003.parquet").unlink()
    written: list[int] = []
    real = embedding._write_shard
    monkeypatch.setattr(embedding, "_write_shard", lambda f, n, b: (written.append(n), real(f, n, b)))
    resumed = embed_to_shards(source.records, model, RUNTIME, folder, **kwargs)
    assert written == again
    for a, b in zip(full.emb_paths(), resumed.emb_paths(), strict=True):
        assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(full.ids().drop(columns="file"), resumed.ids().drop(columns="file"))
    pd.testing.assert_frame_equal(full.skipped(), resumed.skipped())


def test_a_damaged_settings_file_is_not_taken_for_other_settings(inv_images: Path, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "run.json").write_text('{"batch_size": 5, "chunk')  # cut off mid-write by a full disk
    with pytest.raises(InputError, match=rf"^{re.escape(str(parts / 'run.json'))} is not valid JSON \(damaged\), so the "
                                         rf"work in {re.escape(str(parts))} cannot be trusted; delete"):
        _measure(inv_images, parts)


# ---------------------------------------------------------------- 3. no usable image: one rule
NONE_USABLE = r"biasprobe: error: none of the 2 images in \S+bad could be used \(e\.g\. a_broken\.png: .+\)"


@pytest.mark.parametrize("stage", ["index build", "score", "invariance"])
def test_no_usable_image_is_the_same_error_in_every_stage(world: dict[str, Path], tmp_path: Path, stage: str) -> None:
    bad, out = world["bad"], tmp_path / "out.parquet"
    if stage == "index build":
        out = tmp_path / "idx"
        args = ["index", "build", "--images", bad, "--model", "world_vgg", "--weights", world["vgg"], "--out", out]
    elif stage == "score":
        args = ["score", "--index", world["index"], "--images", bad, "--out", out, "--k", "3"]
    else:
        args = ["invariance", "--model", "world_vgg", "--weights", world["vgg"], "--images", bad, "--protocol", "crop",
                "--max-shift", "2", "--out", out]
    line = _one_line(_cli(*args, "--threads", "2"))
    assert re.fullmatch(NONE_USABLE, line), line
    assert not out.with_suffix(".parquet").exists() or stage == "index build"
    if stage == "invariance":
        assert not companion(out, "summary").exists() and not (tmp_path / "out.parts").exists()


def test_report_refuses_an_empty_table_in_one_line(tmp_path: Path) -> None:
    scores, invs = write_stage_files(tmp_path, n=10, protocols=("crop",))
    write_table(conform(pd.DataFrame(), INVARIANCE_TABLE), invs[0])  # what invariance used to write
    line = _one_line(_cli("report", "--scores", scores, "--invariance", invs[0], "--out", tmp_path / "r.html"))
    assert line == (f"biasprobe: error: {invs[0]} holds no image (an empty 'invariance' table, e.g. from a run where no "
                    f"image could be used; see {companion(invs[0], 'skipped').name}): run 'biasprobe invariance' again "
                    "on usable images")
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------- 4. the report lists every stage's skipped inputs
def test_report_lists_the_skipped_inputs_of_every_stage(world: dict[str, Path], tmp_path: Path) -> None:
    scores, invs = write_stage_files(tmp_path, n=12, protocols=("crop",))
    write_table(pd.DataFrame({"path": ["x/gone.png"], "reason": ["cannot decode image x/gone.png"]}), companion(invs[0], "skipped"))
    out = tmp_path / "r.html"
    assert main(["report", "--scores", str(scores), "--invariance", str(invs[0]), "--index", str(world["index"]),
                 "--out", str(out)]) == 0
    section = out.read_text().split('<section id="skipped">')[1].split("</section>")[0]
    rows = re.findall(r'<tr><td class="l">([^<]*)</td><td class="path">([^<]*)</td>', section)
    assert rows == [("index build", "zz_broken.png"), ("score", "bad.png"), ("invariance world_vgg", "x/gone.png")]
    assert "No input was skipped" not in section


def test_report_refuses_a_damaged_index_skipped_list(world: dict[str, Path], tmp_path: Path) -> None:
    scores, invs = write_stage_files(tmp_path, n=12, protocols=("crop",))
    copy = _index_copy(world, tmp_path)
    write_table(pd.DataFrame({"path": [], "reason": []}, dtype=str), copy / "skipped.parquet")  # the broken file hidden
    from biasprobe.report.inputs import load_inputs

    with pytest.raises(InputError, match=r"is damaged: skipped\.parquet is [\d,]+ bytes, [\d,]+ when it was written"):
        load_inputs(scores, invs, index=copy)


# ---------------------------------------------------------------- 5. bad output paths
@pytest.mark.parametrize("case", ["score into a folder", "invariance into a folder", "report into a folder",
                                  "index into a file", "index below a file", "name too long", "pseudo file system"])
def test_bad_out_is_refused_in_one_line_before_any_work(tmp_path: Path, case: str) -> None:
    """Every input below is missing too: the refusal must be about --out, so it came first."""
    folder = tmp_path / "taken.parquet"
    folder.mkdir()
    file = tmp_path / "taken"
    file.write_text("a file")
    nothing = tmp_path / "nothing"
    long_name = tmp_path / ("a" * 245 + ".parquet")  # fits alone, not with '.skipped.parquet' and the temp suffix
    args, expected = {
        "score into a folder": (["score", "--index", nothing, "--images", nothing, "--out", folder],
                                f"--out {folder} is a folder; give a file name ending in .parquet"),
        "invariance into a folder": (["invariance", "--model", "world_vgg", "--weights", nothing, "--images", nothing,
                                      "--protocol", "crop", "--out", folder],
                                     f"--out {folder} is a folder; give a file name ending in .parquet"),
        "report into a folder": (["report", "--scores", nothing, "--invariance", nothing, "--out", folder],
                                 f"--out {folder} is a folder; give a file name"),
        "index into a file": (["index", "build", "--images", nothing, "--model", "world_vgg", "--out", file],
                              f"--out {file} is a file, and a folder is written there; give a new folder name"),
        "index below a file": (["index", "build", "--images", nothing, "--model", "world_vgg", "--out", file / "idx"],
                               f"cannot write --out {file / 'idx'}: {file} is a file, not a folder"),
        "name too long": (["score", "--index", nothing, "--images", nothing, "--out", long_name],
                          f"cannot write --out {long_name}: a name is too long for the file system (275 bytes with the "
                          "companion and temporary suffixes, at most 255); choose a shorter name"),
        "pseudo file system": (["score", "--index", nothing, "--images", nothing, "--out", "/sys/scores.parquet"],
                               "cannot write --out /sys/scores.parquet: "),
    }[case]
    line = _one_line(_cli(*args))
    assert line.startswith(f"biasprobe: error: {expected}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "taken.parquet"]  # nothing written


def test_a_full_disk_during_the_work_is_one_line_and_leaves_nothing(world: dict[str, Path], tmp_path: Path) -> None:
    full = ("import errno, os\nimport biasprobe.core.io as bio\n"
            "def full(fd, data):\n    os.close(fd)\n    raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "bio._write_file = full\n")
    out = tmp_path / "s.parquet"
    line = _one_line(_cli("score", "--index", world["index"], "--images", world["test"], "--out", out, "--k", "3", code=full))
    parts = parts_dir_for(out)  # the first file written is the resumable run's settings
    assert line == (f"biasprobe: error: cannot write {parts / 'run.json'}: no space left on the device; "
                    "free some space and run again")
    assert list(tmp_path.iterdir()) == [parts] and list(parts.iterdir()) == []  # no table, no companion, no temporary file


def test_a_read_only_output_folder_is_refused_before_the_work(tmp_path: Path) -> None:
    read_only = ("import errno, tempfile\nreal = tempfile.mkstemp\n"
                 f"def mkstemp(*a, dir=None, **k):\n    if dir is not None and str(dir).startswith({str(tmp_path / 'ro')!r}):\n"
                 "        raise OSError(errno.EROFS, 'Read-only file system')\n    return real(*a, dir=dir, **k)\n"
                 "tempfile.mkstemp = mkstemp\n")
    (tmp_path / "ro").mkdir()
    out = tmp_path / "ro" / "x.parquet"
    line = _one_line(_cli("invariance", "--model", "world_vgg", "--weights", tmp_path / "none.pt", "--images",
                          tmp_path / "none", "--protocol", "crop", "--out", out, code=read_only))
    assert line == f"biasprobe: error: cannot write --out {out}: the file system is read-only ({tmp_path / 'ro'})"


# ---------------------------------------------------------------- 6. messages that name the real cause
def test_a_text_file_as_weights_is_called_a_text_file(tmp_path: Path) -> None:
    (tmp_path / "notes.pt").write_text("epoch 3: loss 0.12\n")
    line = _one_line(_cli("invariance", "--model", "efficientnet_lite0", "--weights", tmp_path / "notes.pt",
                          "--images", "builtin:photos", "--protocol", "crop", "--out", tmp_path / "x.parquet"))
    assert line == (f"biasprobe: error: cannot read weights {tmp_path / 'notes.pt'}: it is a text file beginning 'epoch 3: "
                    "loss 0.12', not a PyTorch weights file (a state_dict saved with torch.save)")


def _bad_weights(kind: str, path: Path) -> str:
    if kind == "empty":
        path.write_bytes(b"")
        return r"is empty \(0 bytes\), not a PyTorch weights file"
    if kind == "truncated":
        torch.save({"w": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:3000])
        return r"is a damaged PyTorch file \(its zip archive cannot be read: truncated or copied incompletely\)"
    if kind == "a whole module":
        torch.save(nn.Linear(2, 2), path)
        return (r"holds Python objects that are not tensors \(torch\.nn\.modules\.linear\.Linear\); biasprobe loads only "
                r"tensors \(weights_only=True\) for safety: save the state_dict alone")
    if kind == "a plain pickle":
        import pickle

        path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
        return "is a Python pickle, not a PyTorch weights file"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["empty", "truncated", "a whole module", "a plain pickle"])
def test_unreadable_weights_say_what_the_file_is(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "w.pt"
    expected = _bad_weights(kind, path)
    with pytest.raises(ModelError, match=rf"^cannot read weights {re.escape(str(path))}: it {expected}"):
        read_state_dict(path)


def test_score_with_another_model_names_how_the_index_was_built(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    line = _one_line(_cli("score", "--index", world["index"], "--images", world["test"], "--out", out, "--model", "world_resnet"))
    assert re.fullmatch(
        rf"biasprobe: error: index {re.escape(str(world['index']))} was built by world_vgg with weights "
        rf"{re.escape(str(world['vgg']))} \(sha256 [0-9a-f]{{12}}\.\.\.\), and --model asks to score with world_resnet: "
        r"leave out --model and --weights to score with the index's model, or build an index with world_resnet "
        r"\('biasprobe index build --model world_resnet'\)", line), line
    assert main(["score", "--index", str(world["index"]), "--images", str(world["test"]), "--out", str(out),
                 "--weights", str(world["resnet"])]) == 1  # the other arch's checkpoint given as the index's weights


def test_score_when_the_recorded_weights_are_gone(world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = shutil.copyfile(world["vgg"], tmp_path / "moved.pt")
    build_index(open_source(world["test"]), create_model("world_vgg", weights=weights), tmp_path / "idx", runtime=RUNTIME,
                show_progress=False)
    weights.unlink()
    assert main(["score", "--index", str(tmp_path / "idx"), "--images", str(world["test"]), "--out", str(tmp_path / "s.parquet"),
                 "--k", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(f"was built by world_vgg with weights {weights} (sha256 {err.split('sha256 ')[1][:12]}...), and that "
                        "weights file is not there any more (moved, or the index was copied from another machine): pass "
                        "--weights FILE with the same weights"), err
    assert "needs --weights" not in err


def test_unreadable_tables_and_json_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_text("path,reason\nx,y\n")
    with pytest.raises(InputError, match=r"t\.parquet is not a Parquet table \(it does not start with the Parquet signature\)$"):
        read_table(tmp_path / "t.parquet")
    data = write_table(pd.DataFrame({"a": range(100)}), tmp_path / "u.parquet").read_bytes()
    (tmp_path / "u.parquet").write_bytes(data[: len(data) - 20])
    with pytest.raises(InputError, match=r"u\.parquet is a damaged Parquet table: its end is missing \(truncated"):
        read_table(tmp_path / "u.parquet")
    (tmp_path / "e.json").write_text("")
    with pytest.raises(InputError, match=r"e\.json is empty: damaged, truncated or not a biasprobe file$"):
        read_json_object(tmp_path / "e.json")
    (tmp_path / "b.json").write_text('{"k": 1,')
    with pytest.raises(InputError, match=r"b\.json is not valid JSON \(Expecting property name enclosed in double quotes "
                                         r"at line 1, column 9\)"):
        read_json_object(tmp_path / "b.json")


def test_an_unreadable_meta_json_is_named(world: dict[str, Path], tmp_path: Path) -> None:
    copy = _index_copy(world, tmp_path)
    (copy / "meta.json").write_text((world["index"] / "meta.json").read_text()[:100])
    with pytest.raises(InputError, match=rf"^index {re.escape(str(copy))} is unreadable: {re.escape(str(copy / 'meta.json'))} "
                                         rf"is not valid JSON .*; {re.escape(REBUILD)}$"):
        TrainingIndex.open(copy)
    Image.new("RGB", (4, 4)).save(copy / "meta.json", format="PNG")
    with pytest.raises(InputError, match=r"meta\.json is not a JSON text file \(byte 0 is not UTF-8 text\)"):
        TrainingIndex.open(copy)


def test_an_intact_file_this_faiss_cannot_parse_is_named(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that matches its digest but that this FAISS cannot read (e.g. written by another
    version) is named as intact: the cause is the library, not the file."""
    from biasprobe.index import training_index

    def unreadable(path: Path) -> object:
        raise RuntimeError("Error in faiss::read_index at index_read.cpp:1041: Index type 0x49564632 not recognized")

    monkeypatch.setattr(training_index, "read_index", unreadable)
    with pytest.raises(InputError, match=rf"^index {re.escape(str(world['index']))}: index\.faiss is as it was written but "
                                         r"cannot be read here \(RuntimeError: Error in faiss::read_index .*\); rebuild"):
        TrainingIndex.open(world["index"])
