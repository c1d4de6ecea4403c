"""Approximate index: recall@10 against exact search and query speed, on clustered data.

Data: 1M x 256 float32 from a mixture of 1,000 Gaussians (centres N(0, 1), within-cluster
std 1.0); queries are fresh draws from the mixture. The approximate index is the one
biasprobe chooses (``choose_factory``) with its default search parameters, followed by the
exact re-ranking biasprobe always does; exact search is FAISS IndexFlatL2 on the same data.
Targets: recall@10 >= 0.95 and at least 10x faster queries, both measured in this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from biasprobe.engine.runtime import set_threads
from biasprobe.index.faiss_build import build_faiss_index, choose_factory, default_search_params
from biasprobe.index.search import Searcher, rerank
from biasprobe.index.store import VectorStore


def mixture(n: int, centres: np.ndarray, rng: np.random.Generator, *, std: float = 1.0, block: int = 100_000) -> np.ndarray:
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        out[lo:hi] = centres[rng.integers(0, len(centres), hi - lo)]
        out[lo:hi] += std * rng.standard_normal((hi - lo, centres.shape[1]), dtype=np.float32)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--factory", default=None, help="override the chosen factory string")
    parser.add_argument("--search-params", default=None, help="override e.g. nprobe=32")
    parser.add_argument("--nprobe", default=None, help="comma-separated nprobe values to sweep (recall@k and time of each)")
    parser.add_argument("--std", type=float, default=1.0, help="within-cluster std (larger: harder for IVF)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    threads = set_threads(args.threads)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    data = mixture(args.n, centres, rng, std=args.std)
    queries = mixture(args.queries, centres, rng, std=args.std)
    factory = args.factory or choose_factory(args.n, args.dim, memory_budget=8 << 30)
    params = args.search_params if args.search_params is not None else default_search_params(factory)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, lo in enumerate(range(0, args.n, 250_000)):
            paths.append(Path(tmp) / f"emb_{i:04d}.npy")
            np.save(paths[-1], data[lo : lo + 250_000])
        store = VectorStore(paths)
        started = time.perf_counter()
        searcher = Searcher(build_faiss_index(store, factory, seed=0), params)
        build = time.perf_counter() - started

        exact = faiss.IndexFlatL2(args.dim)
        exact.add(data)
        started = time.perf_counter()
        _d, truth = exact.search(queries, args.k)
        t_exact = time.perf_counter() - started

        width = 2 * args.k  # what TrainingIndex asks of an approximate index: k + margin
        started = time.perf_counter()
        _dist, rows = rerank(store, queries, searcher.search(queries, width), k=args.k)
        t_approx = time.perf_counter() - started
        sweep = []
        for nprobe in [int(v) for v in args.nprobe.split(",")] if args.nprobe else []:
            swept = Searcher(searcher.index, f"nprobe={nprobe}")
            started = time.perf_counter()
            _d, found = rerank(store, queries, swept.search(queries, width), k=args.k)
            seconds = time.perf_counter() - started
            sweep.append((nprobe, np.mean([len(set(a) & set(b)) / args.k for a, b in zip(found, truth, strict=True)]), seconds))

    recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(rows, truth, strict=True)])
    print(f"approximate index: {args.n} x {args.dim}, mixture of {args.clusters} Gaussians, {args.queries} queries, "
          f"k={args.k}, {threads} threads, faiss {faiss.__version__}")
    print(f"  factory {factory} ({params or 'no search params'}), built in {build:.1f} s")
    print(f"  exact IndexFlatL2 search: {t_exact:.3f} s")
    print(f"  approximate search + exact re-rank: {t_approx:.3f} s")
    print(f"  recall@{args.k} {recall:.4f} (target >= 0.95); speed ratio {t_exact / t_approx:.1f}x (target >= 10x)")
    for nprobe, swept_recall, seconds in sweep:
        print(f"  nprobe={nprobe}: recall@{args.k} {swept_recall:.4f}, {seconds:.3f} s, {t_exact / seconds:.1f}x faster than exact")


if __name__ == "__main__":
    main()
