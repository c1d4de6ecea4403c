"""``biasprobe demo``: the whole pipeline on the built-in world and the bundled photos.

World: write the photographer's-bias world, train each architecture three times (baseline,
crop-augmented, antialiased), index the training split with the baseline, score the test
split against it (one atypicality axis for every variant), measure every protocol for every
variant, and move a sample of test objects over the whole frame for every variant (positions, with
the training objects' density from the index). Photos: the bundled EfficientNet-Lite0 on the nine
bundled photos, every protocol, and each whole photo over the frame; EfficientNet-Lite0, Lite1 and
Lite2 on the photos with their hand-assigned ImageNet labels under ``crop`` and ``zhang`` only,
compared side by side (accuracy against consistency). Layers: where in each
network a 1-pixel step starts to change the features (``crop`` and ``circular``), for every world
variant and for EfficientNet-Lite0 on the photos. Then one HTML report and ``summary.json``.

Every step writes its output under ``OUT/work`` and records its settings beside it; a re-run
skips the steps whose output exists with the same settings, so an interrupted demo resumes.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from biasprobe import __version__
from biasprobe.analysis import assign_halves, protocol_figures
from biasprobe.core.hashing import short_digest
from biasprobe.core.io import read_table, write_json
from biasprobe.data.sources import BUILTIN_PHOTOS, open_source
from biasprobe.demo.steps import DemoSteps, Step
from biasprobe.engine.runtime import Runtime
from biasprobe.invariance.protocols import list_protocols
from biasprobe.models import create_model

if TYPE_CHECKING:
    from biasprobe.data.sources import ImageSource
    from biasprobe.index import TrainingIndex
    from biasprobe.models import ProbeModel

__all__ = ["DemoPlan", "demo_steps", "run_demo"]

log = logging.getLogger(__name__)

VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"augment": None, "antialias": False},
    "augmented": {"augment": "crop", "antialias": False},
    "antialiased": {"augment": None, "antialias": True},
}
"""Each architecture is trained three ways: ``augment`` (None or "crop") and ``antialias``."""
PHOTO_MODEL = "efficientnet_lite0"
LAYER_PROTOCOLS = ("crop", "circular")
"""The protocols the layers steps measure: the paper's main one, and the one that isolates the strides."""
COMPARE_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
COMPARE_PROTOCOLS = ("crop", "zhang")
"""The model comparison on the photos: three ImageNet models under the paper's main protocol and
the paired one whose consistency is Zhang's (only these two, to keep the extra time small)."""


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs; ``quick`` trades images and epochs for time."""

    quick: bool = False
    archs: tuple[str, ...] = ("world_vgg", "world_resnet")
    epochs: int = 8
    world_digits: int | None = None
    seed: int = 0
    protocols: tuple[str, ...] = field(default_factory=lambda: tuple(p.name for p in list_protocols()))
    batch_size: int = 256
    photo_batch_size: int = 64
    positions_images: int = 100
    """Test images (a sample stratified by label) moved over the frame per world model."""
    positions_step: int = 2
    photo_positions_step: int = 4

    @classmethod
    def make(cls, *, quick: bool, seed: int = 0) -> DemoPlan:
        if quick:
            return cls(quick=True, archs=("world_vgg",), epochs=5, world_digits=900, seed=seed, positions_images=50,
                       photo_positions_step=8)  # fmt: skip
        return cls(quick=False, seed=seed)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# Typical seconds of each kind of step (quick, full) on 2 CPU cores, from the step_seconds of
# measured runs; only their proportions matter (the time-left estimate of demo/steps.py).
TYPICAL_SECONDS: dict[str, tuple[float, float]] = {
    "world": (2, 2), "train": (20, 45), "index": (6, 17), "score": (1, 2), "invariance": (18, 45),
    "photos": (20, 43), "report": (12, 20), "positions": (5, 10), "photo_positions": (9, 33), "layers": (5, 8),
    "compare": (7, 15),
}


def demo_steps(plan: DemoPlan) -> list[Step]:
    """The demo's steps in the order run_demo runs them (DemoSteps refuses any other)."""

    def step(title: str, kind: str) -> Step:
        return Step(title, TYPICAL_SECONDS[kind][0 if plan.quick else 1])

    steps = [step("write the photographer's-bias world", "world")]
    for arch in plan.archs:
        steps += [step(f"train {arch} ({variant})", "train") for variant in VARIANTS]
        steps.append(step(f"index the training split with {arch} (baseline)", "index"))
        steps.append(step(f"score the test split against the {arch} index", "score"))
        steps += [step(f"invariance of {arch} ({variant}) on every protocol", "invariance") for variant in VARIANTS]
        steps += [step(f"positions of {arch} ({variant}) over the frame", "positions") for variant in VARIANTS]
    steps.append(step(f"invariance of {PHOTO_MODEL} on the bundled photos", "photos"))
    steps += [step(f"invariance of {model} on the labelled photos ({', '.join(COMPARE_PROTOCOLS)})", "compare")
              for model in COMPARE_MODELS]
    steps.append(step(f"positions of {PHOTO_MODEL} on the bundled photos", "photo_positions"))
    for arch in plan.archs:
        steps += [step(f"layers of {arch} ({variant})", "layers") for variant in VARIANTS]
    steps.append(step(f"layers of {PHOTO_MODEL} on the bundled photos", "layers"))
    steps.append(step("write the HTML report", "report"))
    return steps


def _score_to_file(index: TrainingIndex, source: ImageSource, model: ProbeModel, path: Path, *,
                   runtime: Runtime, batch_size: int, command: list[str] | None) -> None:
    from biasprobe.index import score_images

    score_images(index, source, model, runtime=runtime, batch_size=batch_size, command=command).write(path)


def run_demo(out: str | Path = "reports/demo", *, quick: bool = False, seed: int = 0,
             command: list[str] | None = None) -> dict[str, Any]:
    """Run the whole demo and return the summary (also written to ``OUT/summary.json``)."""
    from biasprobe.engine.units import parts_dir_for
    from biasprobe.index.build import build_index
    from biasprobe.index.training_index import TrainingIndex, search_device
    from biasprobe.invariance import run_invariance
    from biasprobe.layers.run import run_layers
    from biasprobe.positions.run import run_positions
    from biasprobe.report import Supplement, write_report
    from biasprobe.world import WorldConfig, make_world, read_world_info
    from biasprobe.world.train import train_world_model

    plan = DemoPlan.make(quick=quick, seed=seed)
    out = Path(out)
    work = out / "work"
    for sub in ("models", "indices", "tables"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    runtime = Runtime.create()
    steps = DemoSteps(demo_steps(plan), work)
    started = time.perf_counter()
    protocols = list(plan.protocols)

    world_dir = work / "world"
    world_config = WorldConfig(seed=plan.seed, digits=plan.world_digits)
    steps.run("write the photographer's-bias world", world_dir, world_config.to_dict(),
              lambda: make_world(world_dir, world_config, overwrite=True))
    world = read_world_info(world_dir)
    test_source = open_source(world.test_dir, boxes=world.boxes("test"))

    summary_world: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    summary_positions: dict[str, Any] = {"world": {}, "photos": {}}
    positions_files: list[Path] = []
    invariance_files: list[Path] = []
    scores_files: dict[str, Path] = {}
    for arch in plan.archs:
        checkpoints: dict[str, Path] = {}
        for variant, options in VARIANTS.items():
            ckpt = work / "models" / f"{arch}-{variant}.pt"
            checkpoints[variant] = ckpt
            settings = {"world": world.digest, "arch": arch, "epochs": plan.epochs, "seed": plan.seed, **options}
            steps.run(f"train {arch} ({variant})", ckpt, settings,
                      partial(train_world_model, world_dir, arch=arch, out=ckpt, epochs=plan.epochs, seed=plan.seed,
                              augment=options["augment"], antialias=bool(options["antialias"])))
        baseline = create_model(arch, weights=checkpoints["baseline"])
        index_dir = work / "indices" / arch
        steps.run(f"index the training split with {arch} (baseline)", index_dir / "meta.json",
                  {"model": short_digest(checkpoints["baseline"]), "world": world.digest},
                  partial(build_index, open_source(world.train_dir, boxes=world.boxes("train")), baseline, index_dir,
                          runtime=runtime, batch_size=plan.batch_size, seed=plan.seed, command=command),
                  clear=index_dir)
        index = TrainingIndex.open(index_dir, device=search_device(runtime.device))
        scores_path = work / "tables" / f"{arch}-scores.parquet"
        scores_files[arch] = scores_path
        steps.run(f"score the test split against the {arch} index", scores_path,
                  {"index": short_digest(index_dir / "meta.json"), "world": world.digest},
                  partial(_score_to_file, index, test_source, baseline, scores_path, runtime=runtime,
                          batch_size=plan.batch_size, command=command))
        scores = read_table(scores_path)
        summary_world[arch] = {}
        for variant, ckpt in checkpoints.items():
            table = work / "tables" / f"{arch}-{variant}.parquet"
            invariance_files.append(table)
            model = baseline if variant == "baseline" else create_model(arch, weights=ckpt)
            view_index = index if variant == "baseline" else None
            steps.run(f"invariance of {arch} ({variant}) on every protocol", table,
                      {"model": short_digest(ckpt), "world": world.digest, "protocols": protocols, "seed": plan.seed,
                       "index": short_digest(index_dir / "meta.json") if view_index else None},
                      partial(run_invariance, model, test_source, table, protocols=protocols, runtime=runtime,
                              batch_size=plan.batch_size, index=view_index, seed=plan.seed, command=command),
                      clear=parts_dir_for(table))
            frame = read_table(table)
            summary_world[arch][variant] = {p: protocol_figures(scores, frame, p) for p in protocols}
        summary_positions["world"][arch] = _world_positions(
            plan, steps, arch, checkpoints, baseline, index_dir, world_dir, positions_files, runtime=runtime,
            command=command)  # fmt: skip

    photo_table = work / "tables" / f"photos-{PHOTO_MODEL}.parquet"
    photo_model = create_model(PHOTO_MODEL)
    steps.run(f"invariance of {PHOTO_MODEL} on the bundled photos", photo_table,
              {"model": photo_model.weights_sha256, "protocols": protocols, "seed": plan.seed},
              lambda: run_invariance(photo_model, open_source(BUILTIN_PHOTOS), photo_table, protocols=protocols,
                                     runtime=runtime, batch_size=plan.photo_batch_size, seed=plan.seed,
                                     command=command))
    photo_frame = read_table(photo_table)
    summary_photos = {PHOTO_MODEL: {p: protocol_figures(None, photo_frame, p) for p in protocols}}
    compare_files = _compare_models(plan, steps, work, runtime=runtime, command=command)
    photo_positions = work / "tables" / f"photos-{PHOTO_MODEL}-positions.parquet"
    steps.run(f"positions of {PHOTO_MODEL} on the bundled photos", photo_positions,
              {"model": photo_model.weights_sha256, "step": plan.photo_positions_step, "seed": plan.seed},
              partial(run_positions, photo_model, open_source(BUILTIN_PHOTOS), photo_positions,
                      step=plan.photo_positions_step, runtime=runtime, batch_size=plan.photo_batch_size,
                      seed=plan.seed, command=command),
              clear=parts_dir_for(photo_positions))
    summary_positions["photos"][PHOTO_MODEL] = _positions_figures(photo_positions)
    positions_files.append(photo_positions)

    layer_files: dict[str, list[Path]] = {}
    summary_layers: dict[str, dict[str, Any]] = {}
    for arch in plan.archs:
        halves = assign_halves(read_table(scores_files[arch]))
        for variant in VARIANTS:
            ckpt = work / "models" / f"{arch}-{variant}.pt"
            table = work / "tables" / f"{arch}-{variant}.layers.parquet"
            layer_files.setdefault(arch, []).append(table)
            steps.run(f"layers of {arch} ({variant})", table,
                      {"model": short_digest(ckpt), "world": world.digest, "protocols": list(LAYER_PROTOCOLS),
                       "seed": plan.seed, "scores": short_digest(scores_files[arch])},
                      partial(_layers_to_file, arch, ckpt, test_source, table, halves=halves, runtime=runtime,
                              batch_size=plan.batch_size, seed=plan.seed, command=command),
                      clear=parts_dir_for(table))
            summary_layers.setdefault(arch, {})[variant] = _layer_figures(table)
    photo_layers = work / "tables" / f"photos-{PHOTO_MODEL}.layers.parquet"
    steps.run(f"layers of {PHOTO_MODEL} on the bundled photos", photo_layers,
              {"model": photo_model.weights_sha256, "protocols": list(LAYER_PROTOCOLS), "seed": plan.seed},
              partial(run_layers, photo_model, open_source(BUILTIN_PHOTOS), photo_layers, protocols=LAYER_PROTOCOLS,
                      runtime=runtime, batch_size=plan.photo_batch_size, seed=plan.seed, command=command),
              clear=parts_dir_for(photo_layers))
    summary_photos_layers = {PHOTO_MODEL: _layer_figures(photo_layers)}

    primary = plan.archs[0]
    report_path = out / "report.html"
    steps.always("write the HTML report", partial(
        write_report,
        scores_files[primary],
        [f for f in invariance_files if f.name.startswith(f"{primary}-")],
        out=report_path,
        index=work / "indices" / primary,
        boxes_train=world.boxes("train"),
        boxes_test=world.boxes("test"),
        images_root=world.test_dir,
        title=f"biasprobe demo: the photographer's-bias world ({primary}) and the bundled photos",
        extra_sections=_other_archs_text(summary_world, primary),
        supplements=[Supplement(f"Real photos: {PHOTO_MODEL} on the nine bundled photos", (photo_table,),
                                images_root=BUILTIN_PHOTOS)],
        positions=positions_files,
        seed=plan.seed,
        command=command,
        layers=[*layer_files.get(primary, []), photo_layers],
        models=compare_files,
        models_note=COMPARE_NOTE,
    ))
    summary = {
        "world": summary_world,
        "photos": summary_photos,
        "positions": summary_positions,
        "layers": {"world": summary_layers, "photos": summary_photos_layers},
        "models": {"photos": _compare_figures(compare_files, seed=plan.seed)},
        "provenance": {
            "biasprobe": __version__,
            "python": platform.python_version(),
            "plan": plan.to_dict(),
            "world": {"config": world.config.to_dict(), "digest": world.digest, "train_images": world.n_train,
                      "test_images": world.n_test},
            "runtime": runtime.to_dict(),
            "seconds": round(time.perf_counter() - started, 1),
            "step_seconds": steps.timings,
            "command": command if command is not None else sys.argv,
            "files": {"report": str(report_path), "tables": sorted(str(p) for p in (work / "tables").glob("*.parquet"))},
        },
    }
    write_json(summary, out / "summary.json")
    return summary


COMPARE_NOTE = (f"{', '.join(COMPARE_MODELS)} on the nine bundled photos, measured under "
                f"{' and '.join(COMPARE_PROTOCOLS)} only (the demo keeps the extra time small); labels: hand-assigned "
                "ImageNet classes of seven photos (astronaut and flower show none; biasprobe.data.photos.PHOTO_WNIDS). "
                "Nine photos are few: read the CIs before the ranking.")
COMPARE_KEYS = ("n", "accuracy", "p_change", "consistency")


def _labelled_photos(work: Path) -> Path:
    """A manifest of the bundled photos (where the installed packages hold them) with the
    ImageNet wnids of ``PHOTO_WNIDS`` as labels (none for the two photos without a class)."""
    from biasprobe.data.photos import PHOTO_WNIDS, bundled_photo_paths

    path = work / "photos-labelled.csv"
    rows = [{"path": str(p), "label": PHOTO_WNIDS.get(name, "")} for name, p in bundled_photo_paths().items()]
    text = pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def _compare_models(plan: DemoPlan, steps: DemoSteps, work: Path, *, runtime: Runtime,
                    command: list[str] | None) -> list[Path]:
    """Each of ``COMPARE_MODELS`` on the labelled photos under ``COMPARE_PROTOCOLS``: its table."""
    from biasprobe.engine.units import parts_dir_for
    from biasprobe.invariance import run_invariance
    from biasprobe.models.classes import class_space

    manifest = _labelled_photos(work)
    files = []
    for name in COMPARE_MODELS:
        table = work / "tables" / f"photos-labelled-{name}.parquet"
        files.append(table)
        model = create_model(name)
        source = open_source(manifest, class_space=class_space(model))
        steps.run(f"invariance of {name} on the labelled photos ({', '.join(COMPARE_PROTOCOLS)})", table,
                  {"model": model.weights_sha256, "labels": short_digest(manifest), "protocols": list(COMPARE_PROTOCOLS),
                   "seed": plan.seed},
                  partial(run_invariance, model, source, table, protocols=list(COMPARE_PROTOCOLS), runtime=runtime,
                          batch_size=plan.photo_batch_size, seed=plan.seed, command=command),
                  clear=parts_dir_for(table))  # fmt: skip
    return files


def _compare_figures(files: list[Path], *, seed: int) -> dict[str, Any]:
    """The comparison for summary.json: per model and protocol n, accuracy, P(top-1 change) and
    (zhang) consistency with their CIs, and the answer per protocol."""
    from biasprobe.analysis import accuracy_consistency_answer, compare_model_tables

    table = compare_model_tables([(str(read_table(f)["model"].iloc[0]), read_table(f)) for f in files], seed=seed)

    def value(v: object) -> float | None:
        return None if pd.isna(v) else float(v)  # type: ignore[arg-type]

    figures: dict[str, dict[str, Any]] = {}
    for r in table.to_dict("records"):
        block: dict[str, Any] = {"n": int(r["n"])}
        for key in COMPARE_KEYS[1:]:
            block[key] = value(r[key])
            block[f"{key}_ci"] = None if block[key] is None else [value(r[f"{key}_lo"]), value(r[f"{key}_hi"])]
        figures.setdefault(str(r["model"]), {})[str(r["protocol"])] = block
    protocols = list(dict.fromkeys(table["protocol"]))
    return {"protocols": protocols, "labels": "hand-assigned ImageNet classes of 7 of the 9 photos (PHOTO_WNIDS)",
            "figures": figures, "answers": {p: accuracy_consistency_answer(table, p) for p in protocols}}


def _layers_to_file(arch: str, ckpt: Path, source: ImageSource, out: Path, *, halves: pd.Series, runtime: Runtime,
                    batch_size: int, seed: int, command: list[str] | None) -> None:
    """The layers step of one world model (built here, so a kept step loads nothing)."""
    from biasprobe.layers.run import run_layers

    run_layers(create_model(arch, weights=ckpt), source, out, protocols=LAYER_PROTOCOLS, runtime=runtime,
               batch_size=batch_size, seed=seed, halves=halves, command=command)


def _layer_figures(table: Path) -> dict[str, Any]:
    """Per layers protocol and probe: stride, mean change_1, change_aligned and instability (summary.json)."""
    from biasprobe.core.io import companion
    from biasprobe.layers import LayersSummary

    recorded = LayersSummary.read(companion(table, "summary"))
    return {"total_stride": recorded.total_stride, "protocols": {
        protocol: [{"probe": e["probe"], "stride": e["stride"], "change_1": e["change_1"]["value"],
                    "change_aligned": e["change_aligned"]["value"], "instability": e["instability"]["value"],
                    **({"atypical_over_typical": _half_ratio(e)} if "halves" in e else {})} for e in entries]
        for protocol, entries in recorded.protocols.items()}}  # fmt: skip


def _half_ratio(entry: dict[str, Any]) -> float | None:
    typical = entry["halves"]["typical"]["change_1"]["value"]
    atypical = entry["halves"]["atypical"]["change_1"]["value"]
    return atypical / typical if typical and atypical is not None else None


POSITION_KEYS = ("n", "grid", "accuracy", "instability", "rho_density_accuracy", "rho_density_accuracy_ci",
                 "rho_density_instability", "rho_density_instability_ci")
"""The keys of a positions table's figures that ``summary.json`` repeats (docs/protocols.md section 8.7)."""


def _positions_figures(table: Path) -> dict[str, Any]:
    from biasprobe.core.io import companion
    from biasprobe.core.records import read_json_object

    block = read_json_object(companion(table, "summary"))["positions"]
    return {key: block.get(key) for key in POSITION_KEYS}


def _world_positions(plan: DemoPlan, steps: DemoSteps, arch: str, checkpoints: dict[str, Path], baseline: ProbeModel,
                     index_dir: Path, world_dir: Path, files: list[Path], *, runtime: Runtime,
                     command: list[str] | None) -> dict[str, dict[str, Any]]:
    """Every variant of ``arch`` over the frame, on a stratified sample of the test objects, with
    the training objects' density from the baseline's index; the figures per variant."""
    from biasprobe.engine.units import parts_dir_for
    from biasprobe.positions.maps import training_centres_from_index
    from biasprobe.positions.run import run_positions
    from biasprobe.world import read_world_info

    world = read_world_info(world_dir)
    source = open_source(world.test_dir, boxes=world.boxes("test"), sample=plan.positions_images, seed=plan.seed)
    prep = baseline.preprocessing
    training = training_centres_from_index(index_dir, resize_size=prep.resize_size, canvas=prep.input_size)
    out: dict[str, dict[str, Any]] = {}
    for variant, ckpt in checkpoints.items():
        table = index_dir.parent.parent / "tables" / f"{arch}-{variant}-positions.parquet"
        files.append(table)
        model = baseline if variant == "baseline" else create_model(arch, weights=ckpt)
        steps.run(f"positions of {arch} ({variant}) over the frame", table,
                  {"model": short_digest(ckpt), "world": world.digest, "index": short_digest(index_dir / "meta.json"),
                   "images": plan.positions_images, "step": plan.positions_step, "seed": plan.seed},
                  partial(run_positions, model, source, table, step=plan.positions_step, training=training,
                          runtime=runtime, batch_size=plan.batch_size, seed=plan.seed, command=command),
                  clear=parts_dir_for(table))  # fmt: skip
        out[variant] = _positions_figures(table)
    return out


def _other_archs_text(summary_world: dict[str, dict[str, dict[str, dict[str, Any]]]], primary: str) -> list[tuple[str, str]]:
    """A short section per further architecture (its full figures are in summary.json)."""
    sections = []
    for arch, variants in summary_world.items():
        if arch == primary:
            continue
        lines = []
        for variant, protocols in variants.items():
            f = protocols.get("crop") or next(iter(protocols.values()))
            lo, hi = f["spearman_ci"] or (float("nan"), float("nan"))
            lines.append(
                f"{variant}: P(top-1 change) under crop {f['p_change']:.3f}; typical half "
                f"{f['typical_half']['p_change']:.3f}, atypical half {f['atypical_half']['p_change']:.3f}; "
                f"Spearman rho {f['spearman_rho']:.2f} [{lo:.2f}, {hi:.2f}] (atypicality against the {arch} "
                "baseline's own index)."
            )
        sections.append((f"The other architecture: {arch}", "\n\n".join(lines) +
                         "\n\nEvery protocol's figures for it are in summary.json beside this report."))
    return sections


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """A small table of the headline figures for the terminal."""
    rows = []
    for arch, variants in summary["world"].items():
        for variant, protocols in variants.items():
            f = protocols.get("crop") or next(iter(protocols.values()))
            typical = (f.get("typical_half") or {}).get("p_change")
            atypical = (f.get("atypical_half") or {}).get("p_change")
            rows.append((f"{arch} {variant}", f["p_change"], typical, atypical, f.get("spearman_rho")))
    for model, protocols in summary["photos"].items():
        for protocol, f in protocols.items():
            rows.append((f"{model} {protocol}", f["p_change"], None, None, None))
    frame = pd.DataFrame(rows, columns=["model (crop unless named)", "P(change)", "typical half", "atypical half", "rho"])
    lines = frame.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-").splitlines()
    placed = [(f"{arch} {variant}", b) for arch, variants in summary.get("positions", {}).get("world", {}).items()
              for variant, b in variants.items()]
    placed += [(f"{model} photos", b) for model, b in summary.get("positions", {}).get("photos", {}).items()]
    if placed:
        table = pd.DataFrame(
            [(name, b["accuracy"], b["instability"], b["rho_density_accuracy"], b["rho_density_instability"])
             for name, b in placed],
            columns=["over the frame", "accuracy", "instability", "rho(density, acc.)", "rho(density, instab.)"])
        lines += ["", *table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-").splitlines()]
    compared = (summary.get("models", {}).get("photos") or {}).get("figures") or {}
    if compared:
        table = pd.DataFrame(
            [(model, protocol, f["accuracy"], f["p_change"], f["consistency"])
             for model, protocols in compared.items() for protocol, f in protocols.items()],
            columns=["labelled photos", "protocol", "accuracy", "P(change)", "consistency"])
        lines += ["", *table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-").splitlines()]
    return lines
