"""The layers stage: where in the network a 1-pixel step changes the representation
(docs/protocols.md section 7).

``measure_layers`` finds the model's probe points, cuts the source into units of
``chunk_images`` images (``engine.units``), runs the pending ones (``work.LayersWork``) and
assembles the rows and figures from the units' files. ``run_layers`` keeps the units in
``X.parts/`` so an interrupted run resumes, then writes ``X.parquet``, ``X.summary.json`` and
``X.skipped.parquet`` and removes the parts.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.core.errors import InputError, NoUsableImageError
from biasprobe.core.io import write_with_companions
from biasprobe.core.manifest import RunManifest
from biasprobe.core.outputs import check_output_path
from biasprobe.core.schemas import FIRST_VIEWS_TABLE, LAYERS_TABLE, SKIPPED_TABLE, conform
from biasprobe.core.skipped import no_usable_images, skipped_frame
from biasprobe.core.versions import library_versions
from biasprobe.data.sources import ImageSource
from biasprobe.engine.runtime import Runtime
from biasprobe.engine.units import UnitPlan, parts_dir_for, parts_folder, run_local
from biasprobe.invariance.protocols import Protocol, ProtocolParams, parse_protocols
from biasprobe.layers.probes import model_probes, total_stride
from biasprobe.layers.profile import ProbeLayout
from biasprobe.layers.summary import LayersSummary, probe_figures
from biasprobe.layers.work import LayersWork, read_part
from biasprobe.models.spec import ProbeModel

__all__ = ["DEFAULT_CHUNK_IMAGES", "LayersResult", "measure_layers", "run_layers", "sequence_protocols", "write_layers"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_IMAGES = 32


@dataclass(frozen=True)
class LayersResult:
    """The outputs of the stage: one row per image, protocol and probe; skipped; summary."""

    table: pd.DataFrame
    skipped: pd.DataFrame
    summary: LayersSummary


def sequence_protocols(protocols: str | Sequence[str]) -> list[Protocol]:
    """The chosen protocols, refusing ``zhang`` (its views are pairs, not a sequence)."""
    chosen = parse_protocols(protocols)
    paired = [p.name for p in chosen if p.paired]
    if paired:
        raise InputError(f"layers measures sequence protocols (crop, circular, scale, black, inpaint); "
                         f"{paired[0]!r} gives independent pairs, not a sequence of steps")  # fmt: skip
    return chosen


def measure_layers(
    model: ProbeModel,
    source: ImageSource,
    *,
    protocols: str | Sequence[str] = ("crop", "circular"),
    params: ProtocolParams | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    seed: int = 0,
    halves: pd.Series | None = None,
    parts_dir: str | Path | None = None,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> LayersResult:
    """The layer profile of every image under every sequence protocol (docs/protocols.md section 7).

    ``parts_dir`` makes the run resumable (a temporary folder otherwise). ``halves`` (image_id
    -> 'typical' / 'atypical', ``analysis.assign_halves`` of a scores table) adds per-half figures.
    """
    chosen = sequence_protocols(protocols)
    params = params or ProtocolParams.for_model(model.preprocessing, run_seed=seed)
    if params.input_size != model.preprocessing.input_size:
        raise InputError(f"protocol input size {params.input_size} differs from the model's {model.preprocessing.input_size}")
    for protocol in chosen:
        protocol.check(params)
    if batch_size < 1 or chunk_images < 1:
        raise InputError(f"batch size and chunk size must be at least 1, got {batch_size} and {chunk_images}")
    runtime = runtime or Runtime.create()
    model = runtime.prepare(model)
    probes = model_probes(model)
    layout = ProbeLayout(probes)
    records = source.records
    names = tuple(p.name for p in chosen)
    settings = {
        "model": model.describe(), "protocols": list(names), "params": params.to_dict(), "batch_size": batch_size,
        "chunk_images": chunk_images, "precision": runtime.precision, "probes": [p.to_dict() for p in probes],
        "images": [r.relative for r in records],
    }  # fmt: skip
    from tqdm.auto import tqdm

    with parts_folder(parts_dir) as folder:
        RunManifest.at(folder / "run.json", settings).claim(
            what="a partial run", hint="delete that folder to start again, or re-run with the same settings to resume"
        )
        plan = UnitPlan(folder, count=len(records), size=chunk_images)
        pending = plan.pending()
        done = [u for u in plan.units if u not in pending]
        if done and parts_dir is not None:
            log.info("resuming: %d of %d units already done in %s", len(done), len(plan.units), folder)
        bar = tqdm(total=len(records), initial=sum(u.size for u in done), unit="img", desc="layers",
                   file=sys.stderr, disable=not progress)  # fmt: skip
        work = LayersWork(model, runtime, records, tuple(chosen), params, layout, batch_size, folder,
                          workers=workers, progress=bar.update)  # fmt: skip
        try:
            run_local(work, plan, units=pending)
        finally:
            bar.close()
        parts = [read_part(folder, unit.number, layout.width) for unit in plan.units]
    table = conform(pd.concat([p.rows for p in parts]), LAYERS_TABLE)
    skipped = conform(pd.concat([skipped_frame(source.skipped), *(p.skipped for p in parts)]), SKIPPED_TABLE)
    if table.empty:
        raise no_usable_images(len(records), source.name, skipped)
    keys = conform(pd.concat([p.first_keys for p in parts]), FIRST_VIEWS_TABLE)
    first = np.concatenate([p.first for p in parts])
    figures = probe_figures(table, keys, first, layout, protocols=names, seed=seed, halves=halves)
    summary = LayersSummary(
        model=model.describe(),
        probes=[p.to_dict() for p in probes],
        total_stride=total_stride(probes),
        parameters={**params.to_dict(), "protocols": list(names), "batch_size": batch_size, "chunk_images": chunk_images,
                    "bootstrap_seed": seed, "images": len(records), "halves": halves is not None and len(halves) > 0,
                    "runtime": runtime.to_dict()},
        protocols=figures,
        skipped=len(skipped),
        images_root=source.images_root,
        versions=library_versions(),
        command=list(command) if command is not None else None,
    )  # fmt: skip
    return LayersResult(table, skipped, summary)


def write_layers(result: LayersResult, out: str | Path) -> Path:
    """Write ``X.parquet`` and its companions ``X.summary.json`` and ``X.skipped.parquet``."""
    return write_with_companions(out, result.table, skipped=result.skipped, summary=result.summary)


def run_layers(
    model: ProbeModel,
    source: ImageSource,
    out: str | Path,
    *,
    protocols: str | Sequence[str] = ("crop", "circular"),
    params: ProtocolParams | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 64,
    seed: int = 0,
    halves: pd.Series | None = None,
    chunk_images: int = DEFAULT_CHUNK_IMAGES,
    workers: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> LayersResult:
    """``measure_layers`` resumable through ``X.parts/``, then the three files written."""
    out = check_output_path(out, "table")
    parts = parts_dir_for(out)
    try:
        result = measure_layers(
            model, source, protocols=protocols, params=params, runtime=runtime, batch_size=batch_size, seed=seed,
            halves=halves, parts_dir=parts, chunk_images=chunk_images, workers=workers, progress=progress,
            command=command,
        )  # fmt: skip
    except NoUsableImageError:
        shutil.rmtree(parts, ignore_errors=True)
        raise
    write_layers(result, out)
    shutil.rmtree(parts, ignore_errors=True)
    return result
