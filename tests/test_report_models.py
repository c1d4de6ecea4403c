"""The report's model comparison: the section renders, the CLI flag end to end, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from _report_data import make_invariance, make_scores, write_stage_files

from biasprobe.analysis import compare_model_tables
from biasprobe.cli import main
from biasprobe.core.io import write_table
from biasprobe.report import write_report
from biasprobe.report.models import models_section


def _tables(folder: Path) -> tuple[Path, list[Path]]:
    """Scores, then three models' invariance files on the same 40 images (crop and zhang), the
    last with two images more and a protocol the others lack."""
    scores, invs = write_stage_files(folder, n=40, models=("lite_a", "lite_b"), protocols=("crop", "zhang"))
    more = make_scores(42)
    inv, _ = make_invariance(more, model="lite_c", protocols=("crop", "zhang", "black"), effect=0.1, seed=9)
    invs.append(write_table(inv, folder / "inv_lite_c.parquet"))
    return scores, invs


def test_the_section_shows_each_model_and_answers_from_the_numbers(tmp_path: Path) -> None:
    _, invs = _tables(tmp_path)
    section = models_section(invs, seed=0)
    assert section["why"] == "" and section["figure"].startswith("data:image/png;base64,")
    rows = section["rows"]
    assert [(r["model"], r["protocol"]) for r in rows] == [
        ("lite_a", "crop"), ("lite_b", "crop"), ("lite_c", "crop"), ("lite_a", "zhang"), ("lite_b", "zhang"),
        ("lite_c", "zhang")]
    assert all(r["n"] == 40 for r in rows)
    assert rows[0]["consistency"] == "" and rows[3]["consistency"] != "" and rows[3]["consistency_ci"].startswith("[")
    table = compare_model_tables([(name, pd.read_parquet(p)) for name, p in zip(("lite_a", "lite_b", "lite_c"), invs,
                                                                                  strict=True)])
    zhang = table[(table.model == "lite_b") & (table.protocol == "zhang")].iloc[0]
    assert rows[4]["p_change"] == f"{zhang.p_change:.3f}" and rows[4]["accuracy"] == f"{zhang.accuracy:.3f}"
    assert [a.split(" (")[0] for a in section["answers"]] == ["Under crop", "Under zhang"]
    assert all("are more accurate models more consistent here?" in a for a in section["answers"])
    assert "Compared under the protocols every model measured: crop, zhang." in section["note"]
    assert "Measured by some models only (not compared): lite_c: black." in section["note"]
    assert "Images not measured by every model are left out: lite_c 2." in section["note"]


def test_report_renders_the_section_and_says_why_without_it(tmp_path: Path) -> None:
    scores, invs = _tables(tmp_path)
    html = write_report(scores, invs[:1], out=tmp_path / "r.html", models=invs).read_text()
    assert '<a href="#models">Models compared</a>' in html and '<section id="models">' in html
    assert "Models compared on the same images" in html and "accuracy against P(top-1 change)" in html
    assert html.count('<td class="l model">lite_c</td>') == 2
    plain = write_report(scores, invs[:1], out=tmp_path / "plain.html").read_text()
    assert "No invariance tables of several models on the same images were given (--models" in plain


def test_cli_models_flag_end_to_end_and_errors_in_one_line(tmp_path: Path, capsys) -> None:
    _, invs = _tables(tmp_path)
    out = tmp_path / "cli.html"
    assert main(["report", "--invariance", str(invs[0]), "--models", *map(str, invs), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Under zhang (3 models, 40 images each)" in html
    capsys.readouterr()
    code = main(["report", "--invariance", str(invs[0]), "--models", str(invs[0]), str(tmp_path / "nope.parquet"),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--models" in err and "nope.parquet" in err
    code = main(["report", "--invariance", str(invs[0]), "--models", str(invs[0]), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "at least two models, got 1" in err and "analysis" not in err
    # the same model twice: told apart by its file names
    again = write_table(pd.read_parquet(invs[0]), tmp_path / "inv_lite_a_again.parquet")
    section = models_section([invs[0], again])
    assert {r["model"] for r in section["rows"]} == {"lite_a (inv_lite_a)", "lite_a (inv_lite_a_again)"}
