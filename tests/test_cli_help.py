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
    assert sorted(seen) == ["biasprobe index build", "biasprobe invariance", "biasprobe report", "biasprobe score"]


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
