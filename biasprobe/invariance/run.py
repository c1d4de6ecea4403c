"""The invariance stage: every image under every protocol, per-image metrics, dataset figures
(docs/protocols.md sections 2, 3, 6).

``measure_invariance`` cuts the source into units of ``chunk_images`` images
(``engine.units``), runs the pending ones (``work.InvarianceWork``) and assembles the four
outputs from the units' part files. ``run_invariance`` keeps the parts in ``X.parts/`` so an
interrupted run resumes from whichever units finished, then writes ``X.parquet`` and its
companions and removes the parts. A resumed run has the batch boundaries of an
uninterrupted one, so its outputs are bit-identical.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from biasprobe.core.errors import InputError, NoUsableImageError
from biasprobe.core.io import write_with_companions
from biasprobe.core.manifest import RunManifest
from biasprobe.core.outputs import check_output_path
from biasprobe.core.schemas import INVARIANCE_TABLE, SKIPPED_TABLE, VIEWS_TABLE, conform
from biasprobe.core.skipped import no_usable_images, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageSource
from biasprobe.engine.runner import Engine
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import UnitPlan, parts_folder
from biasprobe.invariance.batching import ViewIndex
from biasprobe.invariance.parts import parts_dir_for, read_part
from biasprobe.invariance.protocols import ProtocolParams, parse_protocols
from biasprobe.invariance.summary import InvarianceSummary, summarise
from biasprobe.invariance.work import InvarianceWork
from biasprobe.models.spec import ProbeModel

__all__ = ["DEFAULT_CHUNK_IMAGES", "InvarianceResult", "measure_invariance", "run_invariance", "write_result"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_IMAGES = 32


@dataclass(frozen=True)
class InvarianceResult:
    """The four outputs of the stage."""

    images: pd.DataFrame
    views: pd.DataFrame
    skipped: pd.DataFrame
    summary: InvarianceSummary


def measure_invariance(
    model: ProbeModel,
    source: ImageSource,
    *,
    protocols: str | Sequence[str] = ("crop",),
    params: ProtocolParams | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    index: ViewIndex | None = None,
    k: int = 10,
    seed: int = 0,
    parts_dir: str | Path | None = None,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
    engine: Engine | None = None,
) -> InvarianceResult:
    """Measure every image of ``source`` under every protocol (docs/protocols.md sections 2-3).

    ``parts_dir`` makes the run resumable: finished units of ``chunk_images`` images are kept
    there and skipped by a re-run with the same settings (a temporary folder otherwise; give
    one that every worker can reach when ``engine`` runs units on other machines).
    ``index`` (a TrainingIndex built by the same model) adds each view's ``knn_dist``.
    ``engine`` runs the units (default: this process); the outputs are the same on every engine.
    """
    chosen = parse_protocols(protocols)
    params = params or ProtocolParams.for_model(model.preprocessing, run_seed=seed)
    if params.input_size != model.preprocessing.input_size:
        raise InputError(f"protocol input size {params.input_size} differs from the model's {model.preprocessing.input_size}")
    for protocol in chosen:
        protocol.check(params)
    if batch_size < 1 or chunk_images < 1:
        raise InputError(f"batch size and chunk size must be at least 1, got {batch_size} and {chunk_images}")
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    if index is not None:
        index.check_model(model)
        index.check_k(k)  # a k the index cannot serve is refused before any work
    records = source.records
    names = tuple(p.name for p in chosen)
    settings = {
        "model": model.describe(), "protocols": list(names), "params": params.to_dict(),
        "batch_size": batch_size, "chunk_images": chunk_images, "precision": runtime.precision,
        "index": index is not None, "k": k, "images": [r.relative for r in records],
    }  # fmt: skip
    from tqdm.auto import tqdm

    with parts_folder(parts_dir) as folder:
        RunManifest.at(folder / "run.json", settings).claim(
            what="a partial run", hint="delete that folder to start again, or re-run with the same settings to resume"
        )
        plan = UnitPlan(folder, count=len(records), size=chunk_images)
        pending = plan.pending()  # a finished unit whose part files changed since is measured again
        done = [u for u in plan.units if u not in pending]
        if done and parts_dir is not None:
            log.info("resuming: %d of %d units already done in %s", len(done), len(plan.units), folder)
        bar = tqdm(total=len(records), initial=sum(u.size for u in done), unit="img", desc="invariance",
                   file=sys.stderr, disable=not progress)  # fmt: skip
        work = InvarianceWork(model, runtime, records, tuple(chosen), params, batch_size, index, k, folder,
                              workers=workers, progress=bar.update)  # fmt: skip
        try:
            (engine or Engine()).run(work, plan, units=pending, progress=bar.update)
        finally:
            bar.close()
        parts = [read_part(folder, unit.number) for unit in plan.units]
    images = conform(pd.concat([p.images for p in parts]), INVARIANCE_TABLE)
    views = conform(pd.concat([p.views for p in parts]), VIEWS_TABLE)
    skipped = conform(pd.concat([skipped_frame(source.skipped), *(p.skipped for p in parts)]), SKIPPED_TABLE)
    if images.empty:
        raise no_usable_images(len(records), source.name, skipped)
    summary = InvarianceSummary(
        model=model.describe(),
        parameters={**params.to_dict(), "protocols": list(names), "batch_size": batch_size,
                    "chunk_images": chunk_images, "bootstrap_seed": seed, "k": k if index is not None else None,
                    "images": len(records), "runtime": runtime.to_dict()},
        protocols=summarise(images, protocols=names, seed=seed, views=views),
        skipped=len(skipped),
        images_root=source.images_root,
        versions=library_versions(),
        command=list(command) if command is not None else None,
    )  # fmt: skip
    return InvarianceResult(images, views, skipped, summary)


def write_result(result: InvarianceResult, out: str | Path) -> Path:
    """Write ``X.parquet`` and its companions ``X.views.parquet``, ``X.summary.json``, ``X.skipped.parquet``."""
    return write_with_companions(out, result.images, skipped=result.skipped, summary=result.summary,
                                 tables={"views": result.views})


def run_invariance(
    model: ProbeModel,
    source: ImageSource,
    out: str | Path,
    *,
    protocols: str | Sequence[str] = ("crop",),
    params: ProtocolParams | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    index: ViewIndex | None = None,
    k: int = 10,
    seed: int = 0,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
    engine: Engine | None = None,
) -> InvarianceResult:
    """``measure_invariance`` resumable through ``X.parts/``, then the four files written.

    ``out`` is checked before any work (``core.outputs.check_output_path``). When no image could
    be used, ``X.parts/`` is removed and nothing is written.
    """
    out = check_output_path(out, "table")
    parts = parts_dir_for(out)
    try:
        result = measure_invariance(
            model, source, protocols=protocols, params=params, runtime=runtime, batch_size=batch_size, index=index,
            k=k, seed=seed, parts_dir=parts, chunk_images=chunk_images, workers=workers, progress=progress,
            command=command, engine=engine,
        )  # fmt: skip
    except NoUsableImageError:
        shutil.rmtree(parts, ignore_errors=True)  # nothing in it is worth resuming
        raise
    write_result(result, out)
    shutil.rmtree(parts, ignore_errors=True)
    return result
