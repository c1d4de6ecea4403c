"""Run every benchmark in turn (``make bench``); each prints its own ratios.

Full size takes a while on 2 cores (the 1M-vector ANN and the 20k-image memory run most of
all); pass ``--quick`` for smaller inputs that still print every ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

FULL: dict[str, list[str]] = {
    "bench_cli.py": [],
    "bench_knn.py": [],
    "bench_ann.py": [],
    "bench_embed.py": [],
    "bench_invariance.py": [],
    "bench_overhead.py": ["--profile"],
    "bench_layers.py": [],
    "bench_positions.py": [],
    "bench_ray.py": [],
}
QUICK: dict[str, list[str]] = {
    "bench_cli.py": ["--rounds", "3"],
    "bench_knn.py": ["--n", "20000"],
    "bench_ann.py": ["--n", "100000", "--clusters", "200"],
    "bench_embed.py": ["--throughput-images", "256", "--small", "200", "--large", "2000", "--rounds", "1"],
    "bench_invariance.py": [],
    "bench_overhead.py": ["--rounds", "1"],
    "bench_layers.py": [],
    "bench_positions.py": ["--step", "16"],
    "bench_ray.py": ["--copies", "3", "--rounds", "1"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    parser.add_argument("names", nargs="*", help="only these benchmarks (file names)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    failed = []
    for name, extra in plan.items():
        if args.names and name not in args.names:
            continue
        print(f"\n=== {name} {' '.join(extra)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name), *extra]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
