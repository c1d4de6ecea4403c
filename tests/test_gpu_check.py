"""benchmarks/gpu_check.py runs on a CPU (--quick) and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_quick_on_the_cpu(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path), "--quick",
                           "--device", "cpu"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["environment"]["runtime"]["fp32_math"] == "ieee"
    flips = report["flips"]["cpu_fp32"]
    assert flips["views"] > 0 and flips["top1_differs"] == 0 and flips["max_abs_prob_diff"] == 0  # CPU twice: identical
    assert report["knn"]["queries_with_other_neighbours"] == 0 and report["knn"]["max_abs_distance_diff"] <= 1e-5
    assert report["throughput"]["stage"] and report["throughput"]["bare_forward"] and report["knn_speed"]["4000"]
