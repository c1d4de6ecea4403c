"""The real command line in a subprocess, and the one error line a user reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["invariance_cli", "one_line_error", "run_cli"]


def run_cli(*argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m biasprobe ARGV`` with extra environment variables."""
    return subprocess.run([sys.executable, "-m", "biasprobe", *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})  # fmt: skip


def invariance_cli(images: Path, out: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``biasprobe invariance`` with EfficientNet-Lite0, crop, 1-pixel shift, one thread."""
    return run_cli("invariance", "--model", "efficientnet_lite0", "--images", str(images), "--protocol", "crop",
                   "--max-shift", "1", "--out", str(out), "--threads", "1", *extra, timeout=timeout)  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``biasprobe: error:`` line of a command that failed as a user error (exit 1)."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.startswith("biasprobe: error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]
