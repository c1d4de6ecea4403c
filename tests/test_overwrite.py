"""``biasprobe index build --overwrite``: an index is replaced, and nothing else is ever deleted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from biasprobe.cli import main
from biasprobe.core.errors import InputError
from biasprobe.index.overwrite import clear_index_folder, index_entries, prepare_index_folder

INDEX_FILES = ["meta.json", "build.json", "index.faiss", "ids.parquet", "skipped.parquet", "reference.npy",
               "reference_rows.npy", "boxes.parquet", ".index.faiss.ab12_x9z.tmp", "shards/shards.json",
               "shards/emb_0000.npy", "shards/ids_0000.parquet", "shards/skipped_0000.parquet", "shards/emb_0001.npy",
               "shards/.emb_0002.npy.k3j4l5m6.tmp", "shards/done/000000.json", "shards/done/000001.json"]


def _fake_index(folder: Path) -> None:
    for name in INDEX_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")


def test_an_index_folder_is_emptied_and_kept(tmp_path: Path) -> None:
    _fake_index(tmp_path / "idx")
    files, others = index_entries(tmp_path / "idx")
    assert len(files) == len(INDEX_FILES) and others == []
    assert clear_index_folder(tmp_path / "idx") == len(INDEX_FILES)
    assert list((tmp_path / "idx").iterdir()) == []
    assert clear_index_folder(tmp_path / "nothing") == 0


@pytest.mark.parametrize("stranger", ["notes.txt", "shards/emb_0000.npy.bak", "shards/done/readme.md", "data/a.png",
                                      "shards/done/old/000000.json", "link"])
def test_a_folder_holding_anything_else_is_refused_and_left_alone(tmp_path: Path, stranger: str) -> None:
    folder = tmp_path / "idx"
    _fake_index(folder)
    if stranger == "link":
        (tmp_path / "elsewhere").mkdir()
        os.symlink(tmp_path / "elsewhere", folder / "shards" / "more")
    else:
        (folder / stranger).parent.mkdir(parents=True, exist_ok=True)
        (folder / stranger).write_text("keep me")
    before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    for call in (lambda: prepare_index_folder(folder, overwrite=True), lambda: clear_index_folder(folder)):
        with pytest.raises(InputError, match=r"--overwrite: .* holds 1 entries that are not part of an index .* nothing was deleted"):
            call()
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == before


def test_shards_as_a_link_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real_shards").mkdir()
    (tmp_path / "real_shards" / "emb_0000.npy").write_text("x")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "meta.json").write_text("{}")
    os.symlink(tmp_path / "real_shards", tmp_path / "idx" / "shards")
    with pytest.raises(InputError, match=r"\(shards\)"):
        clear_index_folder(tmp_path / "idx")
    assert (tmp_path / "real_shards" / "emb_0000.npy").exists() and (tmp_path / "idx" / "meta.json").exists()


def test_index_build_refuses_then_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"
    argv = ["index", "build", "--images", "builtin:photos", "--model", "efficientnet_lite0", "--threads", "2", "--out", str(out)]
    assert main([*argv, "--limit", "6"]) == 0
    assert main([*argv, "--limit", "5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"biasprobe: error: {out} already holds a built index; pass --overwrite to replace it, or choose a new --out folder"
    assert main([*argv, "--limit", "5", "--overwrite"]) == 0
    assert json.loads((out / "meta.json").read_text())["count"] == 5
    assert not any(p.name.startswith("emb_0001") for p in (out / "shards").iterdir())
    (out / "mine.txt").write_text("keep me")
    assert main([*argv, "--limit", "4", "--overwrite"]) == 1
    assert "not part of an index (mine.txt)" in capsys.readouterr().err
    assert json.loads((out / "meta.json").read_text())["count"] == 5  # untouched
