"""The figures and commands a new user reads agree with each other and with the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from biasprobe.demo.timing import CONDITIONS, FULL_DEMO, QUICK_DEMO, UNDER_LOAD

ROOT = Path(__file__).resolve().parents[1]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_readme_quotes_the_measured_demo_times_with_their_conditions() -> None:
    readme = _words((ROOT / "README.md").read_text())
    assert f"Measured {CONDITIONS}: the demo takes {FULL_DEMO} (`--quick`: {QUICK_DEMO}); {UNDER_LOAD}." in readme


def test_demo_help_quotes_the_same_times(capsys: pytest.CaptureFixture[str]) -> None:
    from biasprobe.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = _words(capsys.readouterr().out)
    assert f"It takes {FULL_DEMO} {CONDITIONS} ({QUICK_DEMO} with --quick); {UNDER_LOAD}." in out
    assert f"one architecture ({QUICK_DEMO} {CONDITIONS})" in out


def test_the_cpu_install_pins_the_versions_pyproject_pins() -> None:
    pins = dict(re.findall(r'"(torch|torchvision)==([^"]+)"', (ROOT / "pyproject.toml").read_text()))
    line = f"pip install torch=={pins['torch']} torchvision=={pins['torchvision']} --index-url https://download.pytorch.org/whl/cpu"
    assert line in (ROOT / "Makefile").read_text()
    assert line in (ROOT / "README.md").read_text()
