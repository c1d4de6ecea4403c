"""The command line end to end on real photos: index build -> score -> invariance -> report,
with no --images for the report (the stage summaries record where the images are)."""

from __future__ import annotations

import json
from pathlib import Path

from biasprobe.cli import main


def test_stages_chain_through_the_command_line(tmp_path: Path) -> None:
    index, scores, inv, html = tmp_path / "idx", tmp_path / "s.parquet", tmp_path / "i.parquet", tmp_path / "r.html"
    assert main(["index", "build", "--images", "builtin:photos", "--model", "efficientnet_lite0", "--out", str(index)]) == 0
    assert main(["score", "--index", str(index), "--images", "builtin:photos", "--out", str(scores), "--k", "3"]) == 0
    bad_k = ["invariance", "--model", "efficientnet_lite0", "--images", "builtin:photos", "--protocol", "crop",
             "--index", str(index), "--k", "10", "--out", str(inv)]
    assert main(bad_k) == 1 and not inv.exists()  # 9 training images serve k <= 8: refused before any work
    assert main(["invariance", "--model", "efficientnet_lite0", "--images", "builtin:photos", "--protocol", "crop",
                 "--max-shift", "2", "--limit", "4", "--index", str(index), "--k", "3", "--out", str(inv)]) == 0
    assert json.loads(scores.with_name("s.summary.json").read_text())["images_root"] == "builtin:photos"
    assert json.loads(inv.with_name("i.summary.json").read_text())["images_root"] == "builtin:photos"
    assert main(["report", "--scores", str(scores), "--invariance", str(inv), "--index", str(index), "--out", str(html)]) == 0
    page = html.read_text()
    assert "no picture" not in page  # every test image and neighbour thumbnail was found
    assert page.count('src="data:image/') >= 4 + 4 * 3  # 4 measured images, 3 neighbours each
