"""The Ray engine against the local one: the same files for index build, score and invariance;
a worker killed mid-run; workers that cannot be scheduled; the local engine never imports Ray.

One local Ray instance (2 CPUs and one logical GPU, so the ``num_gpus`` path is taken while the
model runs on the CPU) serves the module; the model is a world CNN on a few generated images.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from biasprobe.cli import main
from biasprobe.core.errors import EngineError, InputError
from biasprobe.data.sources import open_source
from biasprobe.engine import runner
from biasprobe.engine.runner import Engine, WorkerSetup
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import Finished, Unit
from biasprobe.index.build import build_index
from biasprobe.index.score import score_images
from biasprobe.index.training_index import TrainingIndex
from biasprobe.invariance import measure_invariance, run_invariance
from biasprobe.invariance.protocols import ProtocolParams
from biasprobe.invariance.work import InvarianceWork
from biasprobe.models import create_model
from biasprobe.world.checkpoint import write_checkpoint
from biasprobe.world.nets import WORLD_PREPROCESSING, build_net, net_config

ray = pytest.importorskip("ray")

PARAMS = ProtocolParams(max_shift=2, embed_size=36, input_size=48, pairs_per_image=2, run_seed=0)
PROTOCOLS = ["crop", "black", "scale", "zhang"]
RAY_GPU = Engine(kind="ray", cpus_per_worker=1)  # the cluster has a GPU: one worker with num_gpus=1
RAY_TWO = Engine(kind="ray", workers=2, cpus_per_worker=1, gpus_per_worker=0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    temp = tempfile.mkdtemp(prefix="bp-ray-", dir="/tmp")  # short: Ray's socket paths are limited to 107 bytes
    ray.init(num_cpus=2, num_gpus=1, _temp_dir=temp, include_dashboard=False, logging_level=logging.WARNING)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the kill hook below travels by value
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Every run here, local or on a worker, uses one torch thread (the same threads give the same numbers)."""
    import faiss

    before, before_faiss = torch.get_num_threads(), faiss.omp_get_max_threads()
    global ONE_THREAD
    ONE_THREAD = Runtime.create(threads=1)
    yield
    torch.set_num_threads(before)
    faiss.omp_set_num_threads(before_faiss)


ONE_THREAD: Runtime


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A world_vgg checkpoint (seeded initial weights), 10 training and 7 test images (one broken)."""
    root = tmp_path_factory.mktemp("rayw")
    config = {**net_config("world_vgg"), "preprocessing": WORLD_PREPROCESSING.to_dict(), "classes": [str(i) for i in range(10)]}
    torch.manual_seed(0)
    weights = write_checkpoint(build_net(config).state_dict(), config, root / "vgg.pt")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 6)):
        for i in range(n):
            folder = root / split / str(i % 2)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "test" / "1" / "broken.png").write_bytes(b"not an image")
    return {"root": root, "weights": weights, "train": root / "train", "test": root / "test"}


def _model(world: dict[str, Path]) -> Any:
    return create_model("world_vgg", weights=world["weights"])


def _build(world: dict[str, Path], out: Path, engine: Engine | None = None) -> TrainingIndex:
    return build_index(open_source(world["train"]), _model(world), out, runtime=ONE_THREAD, batch_size=3, shard_size=4,
                       show_progress=False, engine=engine)


@pytest.fixture(scope="module")
def local_index(world: dict[str, Path]) -> TrainingIndex:
    return _build(world, world["root"] / "index-local")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _measure(world: dict[str, Path], index: TrainingIndex, parts: Path, engine: Engine | None = None) -> Any:
    return measure_invariance(_model(world), open_source(world["test"]), protocols=PROTOCOLS, params=PARAMS,
                              runtime=ONE_THREAD, batch_size=7, index=index, k=3, chunk_images=2, progress=False,
                              parts_dir=parts, engine=engine)  # fmt: skip


def _same_result(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.views, b.views)
    pd.testing.assert_frame_equal(a.skipped, b.skipped)
    assert a.summary == b.summary


# ---------------------------------------------------------------- Ray and local give the same files
def test_index_build_on_ray_equals_local(cluster: None, world: dict[str, Path], local_index: TrainingIndex) -> None:
    on_ray = _build(world, world["root"] / "index-ray", RAY_GPU)
    assert not (on_ray.folder / "shards" / "ray").exists()  # Ray's temporary folder is not left in the index
    local, remote = _files(local_index.folder), _files(on_ray.folder)
    assert sorted(local) == sorted(remote) and "shards/emb_0002.npy" in local and "shards/done/000002.json" in local
    assert local == remote  # embeddings, ids, done markers, FAISS index, reference, meta.json: bit-identical


def test_score_on_ray_equals_local(cluster: None, world: dict[str, Path], local_index: TrainingIndex, tmp_path: Path) -> None:
    def score(engine: Engine | None, parts: Path) -> Any:
        return score_images(local_index, open_source(world["test"]), _model(world), k=3, runtime=ONE_THREAD, batch_size=3,
                            unit_size=3, show_progress=False, parts_dir=parts, engine=engine)  # fmt: skip

    local, remote = score(None, tmp_path / "local"), score(RAY_TWO, tmp_path / "ray")
    pd.testing.assert_frame_equal(local.frame, remote.frame)
    pd.testing.assert_frame_equal(local.skipped, remote.skipped)
    assert local.summary == remote.summary and len(local.frame) == 6 and list(local.skipped["path"]) == ["1/broken.png"]
    assert _files(tmp_path / "local") == _files(tmp_path / "ray")  # the same part files and done markers


def test_invariance_on_ray_equals_local(cluster: None, world: dict[str, Path], local_index: TrainingIndex,
                                        tmp_path: Path) -> None:
    local = _measure(world, local_index, tmp_path / "local")
    remote = _measure(world, local_index, tmp_path / "ray", RAY_GPU)
    _same_result(local, remote)
    assert remote.views["knn_dist"].notna().all() and len(remote.images) == 6 * len(PROTOCOLS)
    assert _files(tmp_path / "local") == _files(tmp_path / "ray")


# ---------------------------------------------------------------- a worker killed mid-run
@dataclass
class _KillingWork:
    work: Any
    marker: Path
    unit: int

    def run(self, units: Sequence[Unit], finished: Finished) -> None:
        for unit in units:
            if unit.number == self.unit and not self.marker.exists():
                self.marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)  # a real worker death, once
            self.work.run([unit], finished)


@dataclass(frozen=True)
class _KillOnce:
    recipe: Any
    marker: Path
    unit: int

    def build(self, setup: WorkerSetup) -> _KillingWork:
        return _KillingWork(self.recipe.build(setup), self.marker, self.unit)


def test_a_killed_worker_is_replaced_or_the_rerun_resumes(cluster: None, world: dict[str, Path],
                                                          local_index: TrainingIndex, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    real = InvarianceWork.recipe
    marker = tmp_path / "killed"
    monkeypatch.setattr(InvarianceWork, "recipe", lambda self: _KillOnce(real(self), marker, 1))
    local = _measure(world, local_index, tmp_path / "local")
    # the runner's own retry: the dead worker is replaced and its unit run again
    with caplog.at_level(logging.WARNING, logger="biasprobe.engine.ray_engine"):
        replaced = _measure(world, local_index, tmp_path / "replaced", RAY_GPU)
    assert marker.is_file() and "Ray worker 0 died during unit 1" in caplog.text
    _same_result(local, replaced)
    # without retries the run stops in one line, keeps the finished units, and the command run again resumes
    marker.unlink()
    out = tmp_path / "x.parquet"
    kwargs: dict[str, Any] = {"protocols": PROTOCOLS, "params": PARAMS, "runtime": ONE_THREAD, "batch_size": 7,
                              "index": local_index, "k": 3, "chunk_images": 2, "progress": False}
    with pytest.raises(EngineError, match=r"^unit 1 \(images 2-3\) lost its Ray worker once \(.*\); finished units "
                                          r"are kept: run the command again to resume$"):
        run_invariance(_model(world), open_source(world["test"]), out, engine=Engine(kind="ray", cpus_per_worker=1, retries=0), **kwargs)
    assert (tmp_path / "x.parts" / "done" / "000000.json").is_file() and not out.exists()
    resumed = run_invariance(_model(world), open_source(world["test"]), out, engine=RAY_GPU, **kwargs)
    _same_result(local, resumed)


# ---------------------------------------------------------------- no silent hang
def test_workers_that_cannot_be_scheduled_are_reported_within_the_bound(cluster: None, world: dict[str, Path],
                                                                         local_index: TrainingIndex, tmp_path: Path) -> None:
    engine = Engine(kind="ray", workers=2, gpus_per_worker=1, cpus_per_worker=1, timeout_s=5)
    started = time.perf_counter()
    with pytest.raises(EngineError) as caught:
        _measure(world, local_index, tmp_path / "parts", engine)
    assert time.perf_counter() - started < 20
    assert str(caught.value).startswith(
        "Ray could not schedule 1 of 2 workers (1 CPU and 1 GPU each) within 5 s; the cluster has 2 CPU, 1 GPU (")
    assert str(caught.value).endswith(
        " GPU free): ask for fewer or smaller workers (--ray-workers, --ray-cpus, --ray-gpus) or wait longer (--ray-timeout)")


# ---------------------------------------------------------------- settings, without a cluster
def test_ray_temp_folder_is_short_enough_for_rays_sockets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from biasprobe.engine.ray_engine import ray_temp_folder

    short = Path("/tmp/bp-r")
    assert ray_temp_folder(Engine(kind="ray"), short) == (short, True)
    deep = tmp_path / ("d" * 60) / "x.parts" / "ray"
    with caplog.at_level(logging.INFO, logger="biasprobe.engine.ray_engine"):
        chosen, remove = ray_temp_folder(Engine(kind="ray"), deep)
    assert remove and chosen.name.startswith("bp-ray-") and "too long a path for Ray's sockets" in caplog.text
    chosen.rmdir()
    with pytest.raises(EngineError, match=r"^--ray-temp .* is too long for Ray's socket paths \(\d+ characters; at most 37\)"):
        ray_temp_folder(Engine(kind="ray", ray_temp=deep), deep)


def test_engine_settings_are_checked_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match=r"^--ray-cpus must be above 0, got 0$"):
        Engine(kind="ray", cpus_per_worker=0)
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineError, match=r"^--engine ray needs Ray, which is not installed: install the ray extra "
                                          r"\(pip install 'biasprobe-cnn\[ray\]'\)$"):
        Engine(kind="ray")


def test_ray_flags_without_the_ray_engine_are_refused(world: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invariance", "--model", "world_vgg", "--weights", str(world["weights"]), "--images", str(world["test"]),
                 "--protocol", "crop", "--out", str(tmp_path / "x.parquet"), "--ray-workers", "2", "--ray-cpus", "1"]) == 1
    assert capsys.readouterr().err.strip() == "biasprobe: error: --ray-workers, --ray-cpus only apply to the Ray engine: add --engine ray"


# ---------------------------------------------------------------- the command line, each engine in its own process
_CLI = """
import sys
from biasprobe.cli import main
code = main(sys.argv[1:])
print("RAY IMPORTED" if "ray" in sys.modules else "NO RAY")
sys.exit(code)
"""


def _cli(*args: object) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_local_never_imports_ray_and_ray_writes_the_same_table(world: dict[str, Path], tmp_path: Path) -> None:
    common = ["invariance", "--model", "world_vgg", "--weights", world["weights"], "--images", world["test"], "--protocol",
              "crop,black", "--max-shift", "2", "--batch-size", "5", "--threads", "1"]
    assert _cli(*common, "--out", tmp_path / "local.parquet").strip().endswith("NO RAY")
    # a local Ray instance started by the command itself, its temporary files in the parts folder, removed at the end
    assert _cli(*common, "--out", tmp_path / "ray.parquet", "--engine", "ray", "--ray-cpus", "1").strip().endswith("RAY IMPORTED")
    for kind in ("", ".views", ".skipped"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"local{kind}.parquet"), pd.read_parquet(tmp_path / f"ray{kind}.parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}{k}" for s in ("local", "ray")
                                                                for k in (".parquet", ".views.parquet", ".skipped.parquet", ".summary.json"))
