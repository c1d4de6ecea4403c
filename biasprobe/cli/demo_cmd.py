"""``biasprobe demo``: the whole pipeline on the built-in world and the bundled photos."""

from __future__ import annotations

import argparse
import time

from biasprobe.demo.timing import CONDITIONS, FULL_DEMO, QUICK_DEMO, UNDER_LOAD

NAME = "demo"
HELP = "run the whole pipeline on the built-in world and the bundled photos, ending in an HTML report"
DESCRIPTION = (HELP + ". Writes OUT/report.html and OUT/summary.json; intermediate files go to "
               f"OUT/work and a re-run resumes from the finished steps. It takes {FULL_DEMO} {CONDITIONS} "
               f"({QUICK_DEMO} with --quick); {UNDER_LOAD}.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="reports/demo", metavar="DIR", help="output folder (default: reports/demo)")
    p.add_argument("--quick", action="store_true", help=f"fewer images and epochs, one architecture ({QUICK_DEMO} {CONDITIONS})")
    p.add_argument("--seed", type=int, default=0, help="random seed for the world, training and resampling (default: 0)")


def run(args: argparse.Namespace) -> int:
    from biasprobe.core.outputs import check_output_path
    from biasprobe.demo.pipeline import run_demo, summary_lines

    check_output_path(args.out, "folder")
    started = time.perf_counter()
    summary = run_demo(args.out, quick=args.quick, seed=args.seed, command=["biasprobe", *args.argv])
    print()
    for line in summary_lines(summary):
        print(line)
    print(f"\nreport: {args.out}/report.html   summary: {args.out}/summary.json   ({time.perf_counter() - started:.0f} s)")
    return 0
