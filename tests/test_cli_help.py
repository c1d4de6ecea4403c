"""Every flag of every command says what it is for, and --images says what it takes."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from biasprobe.cli import COMMANDS, build_parser


def _filled_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of the top level and of every command and sub-action, each command's
    flags added as when it is chosen (command.add_arguments)."""
    parser, commands = build_parser()
    todo = [("biasprobe", parser)]
    while todo:
        name, current = todo.pop()
        yield name, current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    if name == "biasprobe":
                        commands[sub_name].add_arguments(sub)
                    todo.append((f"{name} {sub_name}", sub))


def test_every_action_of_every_command_has_help() -> None:
    names = set()
    missing = []
    for name, parser in _filled_parsers():
        names.add(name)
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS or not str(action.help).strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert names >= {"biasprobe", "biasprobe index build", *(f"biasprobe {c.NAME}" for c in COMMANDS)}
    assert missing == []


def test_images_says_it_takes_a_folder_a_manifest_or_the_bundled_photos() -> None:
    seen = []
    for name, parser in _filled_parsers():
        for action in parser._actions:
            if "--images" in action.option_strings:
                seen.append(name)
                assert action.metavar == "SOURCE", name
                assert "a folder, a .csv manifest or builtin:photos" in str(action.help), name
    assert sorted(seen) == ["biasprobe index build", "biasprobe invariance", "biasprobe layers", "biasprobe positions",
                            "biasprobe report",
                            "biasprobe score"]


@pytest.mark.parametrize("argv", [["train", "--help"], ["report", "--help"]])
def test_flags_that_had_no_help_now_show_it(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from biasprobe.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    out = " ".join(capsys.readouterr().out.split())
    assert ("the world CNN to train" in out) if argv[0] == "train" else ("one self-contained HTML file" in out)


def test_report_images_may_name_the_manifest(tmp_path: Path) -> None:
    """report --images takes what score and invariance took: a manifest stands for its folder."""
    from biasprobe.report.thumbnails import resolve_image

    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"png")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path\nimgs/a.png\n")
    assert resolve_image("imgs/a.png", (str(manifest),)) == tmp_path / "imgs" / "a.png"
    assert resolve_image("imgs/a.png", (str(tmp_path),)) == tmp_path / "imgs" / "a.png"


def test_wrong_paths_fail_in_one_line_before_torch_loads(tmp_path: Path) -> None:
    """Each command below names a path that is not there (or cannot be written): the refusal must
    come before torch, timm or FAISS is imported (they take seconds to load)."""
    import subprocess
    import sys

    (tmp_path / "afile").write_text("x")
    cases = {
        ("invariance", "--model", "world_vgg", "--images", "/nonexistent", "--protocol", "crop", "--out", "x.parquet"):
            "images not found: /nonexistent (a folder, a .csv manifest or builtin:photos)",
        ("invariance", "--model", "world_vgg", "--weights", "/nope.pt", "--images", "builtin:photos", "--protocol", "crop",
         "--out", "x.parquet"): "weights file not found: /nope.pt (--weights)",
        ("index", "build", "--model", "efficientnet_lite0", "--images", "builtin:photos", "--classes", "/nope.txt",
         "--out", "idx"): "classes file not found: /nope.txt (--classes)",
        ("score", "--index", str(tmp_path), "--images", "builtin:photos", "--out", "x.parquet"):
            f"no index at {tmp_path}: meta.json is missing (an unfinished build: re-run 'biasprobe index build' to resume "
            "it); build one with 'biasprobe index build'",
        ("score", "--index", str(tmp_path), "--images", "builtin:photos", "--out", str(tmp_path / "afile" / "x.parquet")):
            f"cannot write --out {tmp_path / 'afile' / 'x.parquet'}: {tmp_path / 'afile'} is a file, not a folder",
        ("invariance", "--model", "world_vgg", "--images", str(tmp_path / "afile"), "--protocol", "crop", "--out", "x.parquet"):
            f"--images expects a folder, a .csv manifest or builtin:photos, got the file {tmp_path / 'afile'}",
        ("train", "--data", "/nonexistent", "--arch", "world_vgg", "--out", "x.pt"):
            "/nonexistent is not a biasprobe world (no world.json); write one with 'biasprobe world --out DIR'",
        ("report", "--scores", "/nope.parquet", "--invariance", "x.parquet", "--out", "r.html"):
            "table not found: /nope.parquet (--scores)",
        ("report", "--invariance", "/nope.parquet", "--out", str(tmp_path)): f"--out {tmp_path} is a folder; give a file name",
        ("world", "--out", str(tmp_path / "afile")): f"--out {tmp_path / 'afile'} is a file, and a folder is written there; "
                                                   "give a new folder name",
    }
    code = ("import sys\nfrom biasprobe.cli import main\n"
            f"for argv in {[list(c) for c in cases]!r}:\n"
            "    print(main(argv))\n"
            "print(sorted(m for m in ('torch', 'timm', 'faiss', 'torchvision') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    *codes, imported = done.stdout.strip().splitlines()
    assert codes == ["1"] * len(cases) and imported == "[]"
    assert done.stderr.strip().splitlines() == [f"biasprobe: error: {line}" for line in cases.values()]
