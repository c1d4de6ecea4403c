"""End to end: ``biasprobe demo --quick`` (what CI runs), its summary, report and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROTOCOLS = {"crop", "black", "inpaint", "scale", "circular", "zhang"}
FIGURE_KEYS = {"n", "p_change", "p_change_ci", "mac", "accuracy", "spearman_rho", "spearman_ci", "typical_half", "atypical_half"}


def _demo(out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", "biasprobe", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=1200)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("demo")
    return out, _demo(out)


@pytest.mark.slow
def test_quick_demo_writes_report_and_summary(demo_run) -> None:
    out, run = demo_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[1/22] write the photographer's-bias world" in run.stdout
    numbered = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert numbered[-1].startswith("[22/22] write the HTML report (at ")  # the counter reaches its total
    assert [line.split("]")[0] for line in numbered] == [f"[{i}/22" for i in range(1, 23)]
    assert "min left)" in numbered[-2] or "under a minute left)" in numbered[-2]
    assert f"report: {out}/report.html" in run.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {"world", "photos", "positions", "layers", "models", "provenance"}
    variants = summary["world"]["world_vgg"]
    assert set(variants) == {"baseline", "augmented", "antialiased"}
    for figures in variants.values():
        assert set(figures) == PROTOCOLS
        for f in figures.values():
            assert set(f) >= FIGURE_KEYS
            assert f["p_change_ci"][0] <= f["p_change"] <= f["p_change_ci"][1]
            assert f["typical_half"]["n"] + f["atypical_half"]["n"] == f["n"]
    photos = summary["photos"]["efficientnet_lite0"]
    assert set(photos) == PROTOCOLS
    assert all(f["n"] == 9 and f["spearman_rho"] is None and f["typical_half"] is None for f in photos.values())
    layers = summary["layers"]
    for variant in ("baseline", "augmented", "antialiased"):
        crop = layers["world"]["world_vgg"][variant]["protocols"]["crop"]
        assert [e["stride"] for e in crop] == [1, 2, 4, 8, 8] and all(e["change_1"] > 0 for e in crop)
        assert all(e["atypical_over_typical"] is not None for e in crop)
    assert layers["photos"]["efficientnet_lite0"]["total_stride"] == 32
    positions = summary["positions"]
    assert set(positions["world"]["world_vgg"]) == {"baseline", "augmented", "antialiased"}
    for block in positions["world"]["world_vgg"].values():
        assert block["n"] == 50 and len(block["grid"]) == 2 and 0 <= block["instability"] <= 1
        assert block["rho_density_accuracy_ci"] is not None and block["rho_density_instability"] is not None
    photo_block = positions["photos"]["efficientnet_lite0"]
    assert photo_block["n"] == 9 and photo_block["rho_density_accuracy"] is None
    compared = summary["models"]["photos"]
    assert compared["protocols"] == ["crop", "zhang"] and set(compared["answers"]) == {"crop", "zhang"}
    assert list(compared["figures"]) == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    for model, protocols in compared["figures"].items():
        zhang = protocols["zhang"]
        assert zhang["n"] == 9 and zhang["consistency"] == pytest.approx(1 - zhang["p_change"])
        assert protocols["crop"]["consistency"] is None
        assert zhang["accuracy_ci"][0] <= zhang["accuracy"] <= zhang["accuracy_ci"][1]
        # accuracy x0 on the seven labelled photos: a sevenths fraction (tests/test_models.py has each model's misses)
        sevenths = protocols["crop"]["accuracy"] * 7
        assert sevenths == pytest.approx(round(sevenths)) and 3 <= round(sevenths) <= 7, model
    assert "are more accurate models more consistent here?" in compared["answers"]["zhang"]
    html = (out / "report.html").read_text()
    assert '<section id="models">' in html and "measured under crop and zhang only" in html
    assert compared["answers"]["zhang"].split("?")[0] in html
    assert '<section id="positions">' in html and html.count('<td class="l model">world_vgg') >= 3
    assert "Where in the network invariance is lost" in html and "world_vgg: under crop, instability goes from" in html
    assert "Real photos: efficientnet_lite0" in html and "coffee.png" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


@pytest.mark.slow
def test_quick_demo_shows_the_photographers_bias(demo_run) -> None:
    """The baseline's crop instability sits on the atypical half (a wide margin: robust to
    float differences between CPUs; the measured values are about 0.06 vs 0.23, rho 0.57)."""
    out, run = demo_run
    assert run.returncode == 0, run.stderr[-3000:]
    crop = json.loads((out / "summary.json").read_text())["world"]["world_vgg"]["baseline"]["crop"]
    assert crop["atypical_half"]["p_change"] > 2 * crop["typical_half"]["p_change"]
    assert crop["spearman_ci"][0] > 0.2


@pytest.mark.slow
def test_interrupted_demo_resumes_from_finished_steps(demo_run) -> None:
    out, run = demo_run
    assert run.returncode == 0, run.stderr[-3000:]
    table = out / "work" / "tables" / "world_vgg-augmented.parquet"
    before = json.loads((out / "summary.json").read_text())
    table.unlink()  # as if the run had stopped inside this step
    again = _demo(out)
    assert again.returncode == 0, again.stderr[-3000:]
    kept = [line for line in again.stdout.splitlines() if "already done, kept" in line]
    assert len(kept) == 20 and "[8/22] invariance of world_vgg (augmented) on every protocol (at" in again.stdout
    after = json.loads((out / "summary.json").read_text())
    assert after["world"] == before["world"] and after["photos"] == before["photos"]
    assert after["positions"] == before["positions"] and after["layers"] == before["layers"]
    assert after["models"] == before["models"]
