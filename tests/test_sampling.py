"""--sample N: a seeded sample, stratified by label, free of the order the source lists its files."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from biasprobe.core.errors import InputError
from biasprobe.data.sampling import allocate, sample_positions
from biasprobe.data.sources import open_source

SIZES = {0: 12, 1: 6, 2: 1, 3: 1}  # images per class folder


def _tree(root: Path) -> list[tuple[str, int]]:
    """An ImageFolder tree with classes of the sizes above; (relative path, label) of each file."""
    files = []
    for label, count in SIZES.items():
        for i in range(count):
            rel = f"{label}/img_{label}_{i:02d}.png"
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.new("L", (4, 4), 10 * i).save(root / rel)
            files.append((rel, label))
    return files


@pytest.mark.parametrize(("sizes", "n", "expected"), [
    ([60, 30, 10], 10, [6, 3, 1]),  # exact quotas
    ([5, 3, 2], 5, [3, 1, 1]),  # quotas 2.5, 1.5, 1: the remainders tie, the first stratum wins
    ([97, 2, 1], 3, [1, 1, 1]),  # largest remainders alone would give [3, 0, 0]
    ([97, 2, 1], 2, [2, 0, 0]),  # fewer than the strata: no minimum
    ([4, 4], 100, [4, 4]),  # more than there is: everything
])
def test_allocation_is_proportional_with_largest_remainders(sizes: list[int], n: int, expected: list[int]) -> None:
    assert allocate(sizes, n) == expected
    assert sum(allocate(sizes, n)) == min(n, sum(sizes))


def test_every_stratum_gets_one_when_there_are_enough() -> None:
    rng = random.Random(0)
    for _ in range(200):
        sizes = [rng.randint(1, 50) for _ in range(rng.randint(1, 12))]
        n = rng.randint(len(sizes), sum(sizes))
        counts = allocate(sizes, n)
        assert sum(counts) == n and all(1 <= c <= s for c, s in zip(counts, sizes, strict=True))
        quotas = [n * s / sum(sizes) for s in sizes]
        assert all(abs(c - q) < 2 for c, q in zip(counts, quotas, strict=True)) or min(sizes) < 2


def test_the_sample_does_not_depend_on_the_listing_order(tmp_path: Path) -> None:
    files = _tree(tmp_path / "imgs")
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    manifest = tmp_path / "imgs" / "list.csv"
    manifest.write_text("path,label\n" + "".join(f"{rel},{label}\n" for rel, label in shuffled))
    folder = open_source(tmp_path / "imgs" / "0").sampled(5, seed=3)  # flat: no labels
    assert len(folder) == 5 and folder.selection == "a sample of 5, seed 3"
    tree = open_source(tmp_path / "imgs", sample=10, seed=3)
    csv = open_source(manifest, sample=10, seed=3)
    assert sorted(r.relative for r in tree) == sorted(r.relative for r in csv)
    # the order of the source is kept: sorted for the tree, the CSV's rows for the manifest
    assert [r.relative for r in tree] == sorted(r.relative for r in tree)
    rows = [rel for rel, _ in shuffled]
    assert [r.relative for r in csv] == sorted((r.relative for r in csv), key=rows.index)
    # quotas 6, 3, 0.5, 0.5: largest remainders give 6, 3, 1, 0; class 3 then gets one from class 0
    # (0 and 1 are both exactly at their quotas; the tie goes to the first)
    per_class = {label: sum(1 for r in tree if r.label == label) for label in SIZES}
    assert per_class == {0: 5, 1: 3, 2: 1, 3: 1}


def test_the_seed_decides_and_the_same_seed_repeats(tmp_path: Path) -> None:
    _tree(tmp_path / "imgs")
    picks = {seed: [r.relative for r in open_source(tmp_path / "imgs", sample=8, seed=seed)] for seed in range(4)}
    assert picks[0] == [r.relative for r in open_source(tmp_path / "imgs", sample=8, seed=0)]
    assert len({tuple(p) for p in picks.values()}) > 1
    everything = open_source(tmp_path / "imgs", sample=1000, seed=0)
    assert len(everything) == sum(SIZES.values())


def test_positions_ignore_paths_spelt_differently(tmp_path: Path) -> None:
    a = [tmp_path / f"x{i}.png" for i in range(30)]
    b = [tmp_path / "sub" / ".." / f"x{i}.png" for i in reversed(range(30))]
    strata = [i % 3 for i in range(30)]
    first = [a[i].name for i in sample_positions(a, strata, 7, seed=1)]
    second = [b[i].name for i in sample_positions(b, strata[::-1], 7, seed=1)]
    assert sorted(first) == sorted(second)


def test_limit_and_sample_do_not_mix(tmp_path: Path) -> None:
    _tree(tmp_path / "imgs")
    with pytest.raises(InputError, match="--limit and --sample cannot be combined"):
        open_source(tmp_path / "imgs", limit=3, sample=3)
    with pytest.raises(InputError, match="--sample needs a --seed of 0 or more"):
        open_source(tmp_path / "imgs", sample=3, seed=-1)
    run = subprocess.run([sys.executable, "-m", "biasprobe", "score", "--index", str(tmp_path), "--images",
                          str(tmp_path / "imgs"), "--out", str(tmp_path / "s.parquet"), "--limit", "3", "--sample", "3"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("argument --sample: not allowed with argument --limit")


def test_index_build_records_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from biasprobe.cli import main

    argv = ["index", "build", "--images", "builtin:photos", "--model", "efficientnet_lite0", "--sample", "6",
            "--seed", "1", "--threads", "2"]
    assert main([*argv, "--out", str(tmp_path / "i")]) == 0
    assert "6 images" in capsys.readouterr().out
    assert json.loads((tmp_path / "i" / "build.json").read_text())["selection"] == "a sample of 6, seed 1"
    ids = json.loads((tmp_path / "i" / "meta.json").read_text())
    assert ids["count"] == 6 and "--sample" in ids["command"]
