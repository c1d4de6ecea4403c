"""Start-up time of the command line, and what each answer imports.

Targets (issue 14): ``biasprobe --help``, ``--version`` and every subcommand's ``--help`` in
under 0.5 s; ``biasprobe models`` in under 1.5 s. Each command runs ``--rounds`` times as a fresh
process (the way a user types it); the best and the median wall time are printed beside the
bare interpreter's start-up (``python -c pass``) measured in the same rounds, so load on a
shared machine shows as a larger interpreter time rather than as a slow command. The heavy
libraries each command imported are listed from a separate run with ``-X importtime``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "torchvision", "timm", "faiss", "pandas", "pyarrow", "scipy", "sklearn", "matplotlib", "ray")
SUBCOMMANDS = ("demo", "world", "train", "index", "score", "invariance", "layers", "positions", "report", "models")
TARGETS = {"models": 1.5}
DEFAULT_TARGET = 0.5


def _commands() -> list[tuple[str, list[str]]]:
    run = [sys.executable, "-m", "biasprobe"]
    commands = [("python -c pass", [sys.executable, "-c", "pass"]), ("--version", [*run, "--version"]), ("--help", [*run, "--help"])]
    commands += [(f"{name} --help", [*run, name, "--help"]) for name in SUBCOMMANDS]
    commands += [("index build --help", [*run, "index", "build", "--help"]), ("models", [*run, "models"])]
    return commands


def _wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _heavy_imports(argv: list[str]) -> list[str]:
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, check=True)
    found = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [name for name in HEAVY if name in found]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per command (default 5)")
    args = parser.parse_args()
    commands = _commands()
    times: dict[str, list[float]] = {label: [] for label, _ in commands}
    for _ in range(args.rounds):  # commands interleaved, so a burst of load hits them alike
        for label, argv in commands:
            times[label].append(_wall(argv))
    print(f"{'command':<22} {'best s':>7} {'median s':>9} {'target s':>9}  heavy imports")
    missed = []
    for label, argv in commands:
        best, median = min(times[label]), statistics.median(times[label])
        target = None if label.startswith("python") else TARGETS.get(label, DEFAULT_TARGET)
        heavy = ", ".join(_heavy_imports(argv)) if target is not None else ""
        mark = "" if target is None or median < target else "  MISSED"
        if mark:
            missed.append(label)
        print(f"{label:<22} {best:>7.3f} {median:>9.3f} {target if target is not None else '':>9}  {heavy or '-'}{mark}")
    print("all targets met" if not missed else f"targets missed (median): {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
