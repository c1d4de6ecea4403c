"""Human factor annotations (ImageNet-X) joined by file name: the installed package's files, factor
files, AUC known answers, malformed lines, and ``biasprobe report --factors`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli import one_line_error, run_cli
from _report_data import write_stage_files
from PIL import Image
from sklearn.metrics import roc_auc_score

from biasprobe import analysis as an
from biasprobe.analysis.factors import imagenet_x_files
from biasprobe.core.errors import InputError


def _installed_annotations(count: int) -> list[dict]:
    """The first ``count`` validation annotations of the installed imagenet-x package."""
    with open(imagenet_x_files()[0], encoding="utf-8") as handle:
        return [json.loads(next(handle)) for _ in range(count)]


def test_auc_known_answers():
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    perfect = an.auc_estimate(scores, np.array([0, 0, 0, 1, 1]))
    assert perfect.value == 1.0 and perfect.ci == (1.0, 1.0) and perfect.n == 5
    assert an.auc_estimate(scores, np.array([1, 1, 0, 0, 0])).value == 0.0
    assert an.auc_estimate(np.ones(6), np.array([0, 1, 0, 1, 0, 1])).value == 0.5  # ties: chance
    assert np.isnan(an.auc_estimate(scores, np.ones(5)).value)  # nobody unflagged: no AUC
    rng = np.random.default_rng(3)
    s, y = rng.normal(size=400), rng.uniform(size=400) < 0.3
    s[y] += 0.7
    s[:5] = np.nan  # images without a score are left out
    e = an.auc_estimate(s, y, seed=1)
    assert e.value == pytest.approx(roc_auc_score(y[5:], s[5:])) and e.n == 395
    assert e.ci_low < e.value < e.ci_high and e.ci_low > 0.5


def test_the_installed_imagenet_x_annotations_are_read_and_joined_by_file_name():
    table = an.read_factors("imagenet-x")
    assert len(table) == 48_868 + 11_233
    assert {"pose", "larger", "smaller", "partial_view", "background"} <= set(table.factors)
    assert set(table.ignored) == {"class", "justification", "one_word"}
    real = _installed_annotations(3)
    train_name = json.loads(Path(imagenet_x_files()[1]).read_text().splitlines()[0])["file_name"]
    paths = [f"val/{real[0]['file_name']}",  # with its folder
             real[1]["file_name"].removesuffix(".JPEG"),  # without its suffix
             f"a/{real[2]['file_name']}", f"b/{real[2]['file_name']}",  # one name, two images: not joined
             f"train/{train_name.split('_')[0]}/{train_name}",
             "val/ILSVRC2012_val_99999999.JPEG"]  # not annotated
    frame = pd.DataFrame({"path": paths, "atypicality": np.linspace(0, 1, len(paths))})
    join = an.join_factors(frame, table)
    assert (join.images, join.matched, join.not_annotated, join.shared_names) == (6, 3, 1, 2)
    assert join.annotations_unused == len(table) - 4
    for factor in ("pose", "larger", "smaller", "background"):
        assert join.frame[factor].tolist()[:2] == [real[0][factor], real[1][factor]]
    line = join.describe()
    assert "3 of 6 images matched" in line and "1 has none (e.g. val/ILSVRC2012_val_99999999.JPEG)" in line
    assert "2 share their file name" in line


def test_per_factor_figures_and_the_auc_for_pose_and_size(tmp_path):
    path = tmp_path / "factors.csv"
    path.write_text("file_name,pose,smaller,color,note\n"
                    "ILSVRC2012_val_00000001.JPEG,1,0,0,x\nILSVRC2012_val_00000002.JPEG,0,1,1,y\n"
                    "ILSVRC2012_val_00000003.JPEG,0,0,1,z\nILSVRC2012_val_00000004.JPEG,0,0,0,w\n")
    table = an.read_factors(path)
    assert table.factors == ("pose", "smaller", "color") and table.ignored == ("note",)
    frame = pd.DataFrame({
        "path": [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)],
        "flips": [2, 4, 0, 1], "pairs": [8, 8, 8, 8], "atypicality": [0.9, 0.8, 0.1, 0.2],
    })
    result = an.analyse_factors(frame, table, seed=0)
    rows = {r.factor: r for r in result.rows}
    assert rows["all annotated images"].n == 4 and rows["all annotated images"].p_change.value == 7 / 32
    assert rows["pose"].n == 1 and rows["pose"].p_change.value == 2 / 8
    assert rows["color"].n == 2 and rows["color"].atypicality.value == pytest.approx(0.45)
    assert result.auc_factors == ("pose", "smaller") and result.auc_flagged == 2
    assert result.auc.value == 1.0  # the flagged images are the two most atypical
    assert "better than chance" in result.auc_sentence() and "pose or smaller" in result.auc_sentence()
    frame["atypicality"] = [0.1, 0.2, 0.9, 0.8]
    reversed_ = an.analyse_factors(frame, table, seed=0)
    assert reversed_.auc.value == 0.0 and "the other way" in reversed_.auc_sentence()


@pytest.mark.parametrize(("name", "body", "words"), [
    ("f.jsonl", '{"file_name": "a.JPEG", "pose": 1}\n{"file_name": "b.JPEG", "pose": 0\n', "line 2: not a JSON object"),
    ("f.jsonl", '{"file_name": "a.JPEG", "pose": 1}\n[1, 2]\n', "line 2: expected a JSON object"),
    ("f.jsonl", '{"file_name": "a.JPEG", "pose": 1}\n{"file_name": "a", "pose": 0}\n', "line 2: 'a' is annotated again"),
    ("f.csv", "file_name,pose\na.JPEG,1\n,0\n", "line 3: empty or missing file_name"),
    ("f.csv", "file_name,pose\na.JPEG,1\nb.JPEG,0,1\n", "line 3: expected 2 fields"),
    ("f.csv", "name,pose\na.JPEG,1\n", "needs a file_name column"),
    ("f.csv", "file_name,pose\na.JPEG,2\n", "no factor column"),
])
def test_a_malformed_factor_file_is_one_error(tmp_path, name, body, words):
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(InputError) as info:
        an.read_factors(path)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_cli_report_factors_end_to_end(tmp_path):
    real = _installed_annotations(40)
    names = [r["file_name"] for r in real] + ["ILSVRC2012_val_99999999.JPEG"]
    images = tmp_path / "val"
    for name in names[:3]:
        images.mkdir(exist_ok=True)
        Image.new("RGB", (40, 30), (10, 90, 160)).save(images / name, "JPEG")
    scores, invs = write_stage_files(tmp_path / "tables", n=len(names), protocols=("crop",), paths=names,
                                     images_root=str(images))
    out = tmp_path / "report.html"
    done = run_cli("report", "--scores", str(scores), "--invariance", str(invs[0]), "--factors", "imagenet-x",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert 'id="factors"' in html and "Atypicality vs human judgement" in html
    assert "40 of 41 images matched an annotation by file name" in html
    assert "flagged with pose, larger or smaller" in html and "partial_view" in html
    # a factor file of the user's: its column names are text, never HTML
    evil = tmp_path / "factors.csv"
    evil.write_text("file_name,<b>pose</b>\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names[:10])))
    done = run_cli("report", "--invariance", str(invs[0]), "--factors", str(evil), "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "&lt;b&gt;pose&lt;/b&gt;" in html and "<b>pose</b>" not in html
    assert "No atypicality (no scores table)" in html
    missing = run_cli("report", "--invariance", str(invs[0]), "--factors", str(tmp_path / "nope.csv"), "--out", str(out))
    assert "factor annotations file (or the word imagenet-x) not found" in one_line_error(missing)
    no_factors = run_cli("report", "--invariance", str(invs[0]), "--out", str(out))
    assert no_factors.returncode == 0 and "No factor annotations were given" in out.read_text()


def test_imagenet_x_without_the_package_is_one_line_naming_the_extra(monkeypatch):
    import biasprobe.analysis.factors as factors

    monkeypatch.setattr(factors.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install 'biasprobe-cnn\[imagenetx\]'"):
        an.read_factors("imagenet-x")
