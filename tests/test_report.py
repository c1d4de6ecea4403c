"""The HTML bias report: self-contained, escaped, robust to missing parts, clean in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_data import make_invariance, make_scores, write_stage_files
from markupsafe import Markup

from biasprobe.cli import main
from biasprobe.core.io import companion, write_json, write_table
from biasprobe.data.sources import bundled_photo_paths
from biasprobe.report import write_report
from biasprobe.report.context import build_context
from biasprobe.report.inputs import load_inputs
from biasprobe.report.provenance import input_provenance

EVIL = "<img src=x onerror=alert(1)>.png"
URL_ATTR = re.compile(r"""(?:src|href|action|poster|srcset)\s*=\s*["']?\s*(?:https?:|//|ftp:)""", re.I)


def _write_boxes_csv(path: Path, n: int, *, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0, 60, n)
    y0 = rng.uniform(0, 60, n)
    size = rng.uniform(20, 40, n)
    pd.DataFrame({"path": [f"t{i}.png" for i in range(n)], "xmin": x0, "ymin": y0, "xmax": x0 + size,
                  "ymax": y0 + size, "image_width": 100, "image_height": 100}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> tuple[Path, str]:
    """Three models (baseline and two fixes), two protocols, boxes, an index folder, real photos."""
    folder = tmp_path_factory.mktemp("report")
    scores, invs = write_stage_files(folder, n=60, models=("world_vgg", "world_vgg_aa", "world_vgg_aug"), boxes=True)
    index = folder / "index"
    index.mkdir()
    (index / "meta.json").write_text('{"model": "world_vgg", "weights_sha256": "cafe1234", "dim": 64, "count": 1000}')
    write_table(pd.DataFrame({"box_cx": [0.5, 0.4, 0.6], "box_cy": [0.5, 0.5, 0.45], "box_log_size": [-0.7, -0.6, -0.8]}),
                index / "train_boxes.parquet")
    out = write_report(scores, invs, out=folder / "out" / "report.html", index=index,
                       boxes_test=_write_boxes_csv(folder / "test_boxes.csv", 30, seed=1),
                       extra_sections={"World": "first paragraph\n\nsecond <b>paragraph</b>"})
    return out, out.read_text()


def test_report_is_one_self_contained_file(full_report):
    out, html = full_report
    assert out.is_file() and not [p for p in out.parent.iterdir() if p != out]  # nothing beside it
    assert "http://" not in html and "https://" not in html
    assert not URL_ATTR.search(html) and "url(" not in html and "@import" not in html
    assert "<script" not in html.lower()
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    pngs = [s for s in srcs if s.startswith("data:image/png")]
    jpegs = [s for s in srcs if s.startswith("data:image/jpeg")]
    # 6 analyses x (decile + scatter + pose) + heatmap + sizes + fixes + 12 shift curves
    assert len(pngs) >= 6 * 3 + 3 + 12
    assert len(jpegs) >= 12  # gallery thumbnails (and neighbours) from the bundled photos


def test_report_has_every_section_and_the_figures_in_it(full_report):
    _, html = full_report
    for anchor in ("summary", "protocols", "atypicality", "boxes", "galleries", "fixes", "duplicates", "skipped",
                   "provenance"):
        assert f'<section id="{anchor}">' in html
    assert "Instability is concentrated on atypical images" in html  # the baseline's verdict
    assert "most atypical tenth" in html
    assert html.count("<h3>world_vgg_aa &middot; crop</h3>") == 1
    assert "training: 3 boxes; test: 30 boxes" in html
    assert "share of flips on atypical half" in html
    assert "cannot decode image bad.png" in html  # skipped inputs with their reason
    assert "2 of 60 scored images are byte-identical" in html  # in_train rows
    assert "cafe1234" in html and "ab" * 32 in html  # index meta and model weights hash
    assert "bootstrap_resamples" in html
    assert "<p>first paragraph</p>" in html and "second &lt;b&gt;paragraph&lt;/b&gt;" in html


def test_data_strings_are_escaped_including_a_hostile_file_name(tmp_path):
    photo = bundled_photo_paths()["coffee"]
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(photo, images / EVIL)
    scores = make_scores(12, paths=[EVIL])
    scores["label_name"] = EVIL
    scores_path = write_table(scores, tmp_path / "scores.parquet")
    write_table(pd.DataFrame({"path": [EVIL], "reason": [f"cannot decode image {EVIL}"]}), companion(scores_path, "skipped"))
    inv, views = make_invariance(scores, model=EVIL)
    inv["top0_name"] = EVIL
    inv_path = write_table(inv, tmp_path / "inv.parquet")
    write_table(views, companion(inv_path, "views"))
    html = write_report(scores_path, [inv_path], out=tmp_path / "r.html", images_root=images, title=EVIL).read_text()
    assert EVIL not in html and "<img src=x" not in html
    escaped = "&lt;img src=x onerror=alert(1)&gt;.png"
    assert f"<title>{escaped}</title>" in html
    # the card shows the name whole or shortened in the middle, never broken inside; the full name in a title
    shown = "&lt;img src=x \u2026=alert(1)&gt;.png"
    assert f'<div class="path" title="{escaped}"><span>{shown}</span><wbr></div>' in html
    assert f'alt="{escaped}"' in html  # the thumbnail loaded from that very file
    assert "data:image/jpeg" in html


def test_missing_images_show_a_placeholder_with_the_reason(tmp_path):
    scores = make_scores(10, paths=["gone/a.png", "gone/b.png"])
    scores_path = write_table(scores, tmp_path / "scores.parquet")
    inv, _ = make_invariance(scores)
    inv_path = write_table(inv, tmp_path / "inv.parquet")
    html = write_report(scores_path, [inv_path], out=tmp_path / "r.html", images_root=tmp_path).read_text()
    assert "no picture: file not found (looked in: " in html
    assert "no views table beside the invariance file" in html
    assert "data:image/jpeg" not in html


def test_minimal_inputs_render_with_one_line_reasons(tmp_path):
    """One model, one protocol, three images, no labels, no boxes, no index, no companions."""
    scores = make_scores(3).drop(columns=["label", "in_train", "neighbor_paths", "neighbor_dists"])
    scores_path = write_table(scores, tmp_path / "scores.parquet")
    inv, _ = make_invariance(make_scores(3))
    inv = inv.drop(columns=["correct0", "label", "label_name", "p_top0"])
    inv_path = write_table(inv, tmp_path / "inv.parquet")
    html = write_report(scores_path, [inv_path], out=tmp_path / "r.html",
                        extra_sections=[("Trusted", Markup("<em>kept as HTML</em>"))]).read_text()
    assert "<em>kept as HTML</em>" in html
    assert "No object boxes are known" in html
    assert "One invariance file (one model) was given" in html
    assert "No in_train column in the scores table." in html
    assert "Not fitted: too few images (3)" in html
    assert "No input was skipped." in html


def test_cli_report_writes_the_file_and_reports_errors_in_one_line(tmp_path, capsys):
    names = [f"{name}{p.suffix}" for name, p in bundled_photo_paths().items()]  # relative to builtin:photos
    scores, invs = write_stage_files(tmp_path, n=20, protocols=("crop",), paths=names)
    write_json({"images": 20, "images_root": "builtin:photos"}, companion(invs[0], "summary"))  # a count, and the root
    out = tmp_path / "cli.html"
    boxes = _write_boxes_csv(tmp_path / "train_boxes.csv", 20, seed=2)
    argv = ["report", "--scores", str(scores), "--invariance", str(invs[0]), "--boxes-train", str(boxes),
            "--title", "CLI run", "--out", str(out)]
    assert main(argv) == 0
    assert out.is_file() and "wrote" in capsys.readouterr().out
    html = out.read_text()
    assert "<title>CLI run</title>" in html and "training: 20 boxes; test: none known" in html
    assert "&#34;--out&#34;" in html  # the command line in the provenance
    assert "data:image/jpeg" in html and "no picture" not in html
    code = main(["report", "--scores", str(tmp_path / "nope.parquet"), "--invariance", str(invs[0]), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "table not found" in err


def test_images_root_is_read_from_each_summarys_top_level_and_an_explicit_root_wins(tmp_path):
    """Typed summaries ("format" and "format_version" first) read like plain ones; a root left
    under "parameters" (where invariance summaries kept it before) is not looked at."""
    scores, invs = write_stage_files(tmp_path, n=6, models=("a", "b"), protocols=("crop",), images_root="inv/root")
    write_json({"format": "score_summary", "format_version": 1, "k": 10, "images_root": "score/root"},
               companion(scores, "summary"))
    typed = json.loads(companion(invs[0], "summary").read_text())
    write_json({"format": "invariance_summary", "format_version": 1, **typed}, companion(invs[0], "summary"))
    write_json({"parameters": {"images_root": "old/place"}, "images": 6}, companion(invs[1], "summary"))
    assert load_inputs(scores, invs).image_roots() == ("score/root", "inv/root")
    assert load_inputs(scores, invs, images_root="given").image_roots() == ("given", "score/root", "inv/root")
    assert load_inputs(None, invs[1:], images_root=None).image_roots() == ()
    items = dict(input_provenance(load_inputs(scores, invs)))
    assert items["invariance file a"]["images_root"] == "inv/root"
    assert items["scores file"]["format"] == "score_summary"


def test_galleries_split_few_images_without_repeats(tmp_path):
    scores = make_scores(5)
    scores_path = write_table(scores, tmp_path / "scores.parquet")
    inv, _ = make_invariance(scores, effect=0.9)
    inv_path = write_table(inv, tmp_path / "inv.parquet")
    gallery = build_context(load_inputs(scores_path, [inv_path]), title=None, seed=0, command=None)["gallery"]
    least = [c["image_id"] for c in gallery["least"]]
    most = [c["image_id"] for c in gallery["most"]]
    assert len(least) == len(most) == 2 and not set(least) & set(most)
    p = inv.set_index("image_id")["p_change"]
    assert p[least].min() >= p[most].max()
    assert p[most[0]] <= p[most[1]]  # most stable first


def _saturate(scores_path: Path) -> None:
    """Atypicality 1 for the 40% of images farthest from the training set (kNN distances stay distinct)."""
    scores = pd.read_parquet(scores_path)
    knn = scores["knn_dist"].to_numpy()
    scores["atypicality"] = np.minimum(1.0, np.round(knn / np.quantile(knn, 0.6), 2))
    write_table(scores, scores_path)


def _shuffle_tables(folder: Path, seed: int) -> None:
    for i, path in enumerate(sorted(folder.glob("*.parquet"))):
        write_table(pd.read_parquet(path).sample(frac=1, random_state=seed + i).reset_index(drop=True), path)


def test_cli_report_is_the_same_whatever_the_order_of_the_rows(tmp_path, capsys):
    """The same images in two row orders (a folder walked vs a CSV manifest): same deciles, halves,
    galleries, figures, everything but the file names."""
    first, second = tmp_path / "first", tmp_path / "second"
    names = [f"{name}{p.suffix}" for name, p in bundled_photo_paths().items()]
    scores, invs = write_stage_files(first, n=40, models=("base", "fixed"), protocols=("crop", "black"), boxes=True,
                                     paths=names)
    _saturate(scores)
    shutil.copytree(first, second)
    _shuffle_tables(second, seed=3)
    pages = []
    for folder in (first, second):
        argv = ["report", "--scores", str(folder / scores.name), "--invariance", *(str(folder / p.name) for p in invs),
                "--out", str(folder / "report.html")]
        assert main(argv) == 0
        pages.append((folder / "report.html").read_text().replace(str(folder), "FOLDER"))
    capsys.readouterr()
    assert pd.read_parquet(first / scores.name)["image_id"].tolist() != pd.read_parquet(second / scores.name)["image_id"].tolist()
    assert pages[0] == pages[1]
    html = pages[0]
    assert "kNN distance</th>" in html and "1.000-1.000</td><td>" in html  # saturated deciles told apart by kNN distance
    assert "ties are broken by the kNN distance" in html


def test_cli_report_without_scores_says_why_each_atypicality_section_is_absent(tmp_path, capsys):
    _, invs = write_stage_files(tmp_path, n=12, models=("a", "b"), protocols=("crop",))
    out = tmp_path / "r.html"
    assert main(["report", "--invariance", *map(str, invs), "--out", str(out)]) == 0
    html = out.read_text()
    assert "No scores table was given (--scores, the output of &#39;biasprobe score&#39;)" in html
    assert "No scores table (--scores): the typical and atypical halves need atypicality." in html
    assert "No scores table was given (--scores): duplicates of training images are unknown." in html
    assert "no typicality scores were given" in html and '<section id="galleries">' in html


def test_the_fixes_figure_grows_with_models_and_protocols():
    import base64
    import io

    from PIL import Image

    from biasprobe.report import figures

    def height(models: int, protocols: int) -> tuple[int, int]:
        names = [f"world_vgg (world_vgg-variant-{i})" for i in range(models)]
        prots = ["crop", "black", "inpaint", "scale", "circular", "zhang", "extra"][:protocols]
        values = {(m, p): {"typical": (0.1, 0.05, 0.15), "atypical": (0.2, 0.15, 0.25)} for m in names for p in prots}
        uri = figures.fixes_plot(names, prots, values, flagged=frozenset({(names[0], prots[0])}))
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as img:
            return img.size

    small, large = height(2, 1), height(8, 7)
    assert large[1] > 3 * small[1]
    rows = 3  # 7 protocols, 3 panels a row
    assert large[1] / (rows * 8) >= 35  # at least 35 pixels per model and panel: labels never overlap


def test_report_explains_x0_folds_provenance_and_keeps_file_names_whole(full_report):
    _, html = full_report
    assert "x0 is each protocol&#39;s first view (t = 0), not the centre crop" in html
    assert html.count('<abbr title="x0 = the protocol&#39;s first view') >= 3  # headline, table, every card
    provenance = html[html.index('<section id="provenance">'):]
    assert provenance.count('<details class="prov">') == provenance.count("<pre>") == 6  # 3 models, scores, index, analysis
    assert "<summary><b>index meta.json</b> <span class=\"muted\">index; model world_vgg; weights cafe1234...</span>" \
        in provenance
    assert "@media print" in html and "details.prov:not([open]) > :not(summary) { display: none !important; }" in html
    assert re.search(r'<div class="path" title="[^"]+">(<span>[^<]+</span><wbr>)+</div>', html)


def test_path_parts_break_only_between_segments_and_shorten_in_the_middle():
    from biasprobe.report.formatting import path_parts

    assert path_parts("3/000258.png") == ["3/", "000258.png"]
    long = path_parts("photos/IMG_20190621_123456_holiday_beach_long.jpeg")
    assert long == ["photos/", "IMG_201906\u2026beach_long.jpeg"] and len(long[1]) == 26
    assert path_parts("C:\\data\\a.png") == ["C:\\", "data\\", "a.png"] and path_parts("") == []


def test_the_scatter_uses_knn_dist_and_the_report_seed(tmp_path):
    from biasprobe import analysis as an
    from biasprobe.report.atypicality import analysis_block

    scores = make_scores(30)
    inv, _ = make_invariance(scores)
    joined = an.join_scores(scores, inv)
    result = an.analyse(scores, inv)[0]
    a, b, c = (analysis_block(result, joined, seed=s) for s in (0, 0, 1))
    assert a["scatter_figure"] == b["scatter_figure"] != c["scatter_figure"]
    assert a["scatter_axis"] == "kNN distance" and a["jitter"] == "0.020"  # 8 pairs: the cap, below a quarter step
    bare = analysis_block(result, joined.drop(columns=["knn_dist"]), seed=0)
    assert bare["scatter_axis"].startswith("atypicality")


# --- the real browser -------------------------------------------------------------------------

def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is missing in CI: run scripts/install-test-system-deps.sh")
        pytest.skip("chromium not installed (scripts/install-test-system-deps.sh installs it)")
    return found


def _run_chromium(binary: str, page: Path, profile: Path, *extra: str) -> tuple[str, str]:
    cmd = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=3000", *extra, page.resolve().as_uri(),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group only
        proc.communicate()
        pytest.fail("chromium did not finish within 90 s (a JavaScript dialog would block it)")
    return out, err


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.browser
def test_console_error_detection_works(tmp_path):
    binary = _chromium()
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); notDefined();</script></body></html>")
    _, err = _run_chromium(binary, page, tmp_path / "profile", "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in _console_errors(err))


@pytest.mark.browser
def test_report_renders_in_headless_chromium(full_report, tmp_path):
    binary = _chromium()
    out, _ = full_report
    dom, err = _run_chromium(binary, out, tmp_path / "profile", "--dump-dom")
    assert _console_errors(err) == []
    assert "Photographer's bias" in dom
    imgs = re.findall(r"<img [^>]*>", dom)
    assert len(imgs) >= 30 and all('src="data:image/' in i for i in imgs)
    assert not URL_ATTR.search(dom)
    shot = tmp_path / "report.png"
    _, err = _run_chromium(binary, out, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,2400")
    assert _console_errors(err) == []
    assert shot.is_file() and shot.stat().st_size > 50_000
    keep = os.environ.get("BIASPROBE_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
