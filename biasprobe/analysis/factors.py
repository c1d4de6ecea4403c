"""Human factor annotations (ImageNet-X) joined to the tables by file name: per factor, how often
the top-1 answer changes and how atypical the images are, and how well atypicality separates the
images people flagged with a pose or size factor from the rest (AUC): a check of the kNN notion
of "atypical" against human judgement.

Annotations come from a file (CSV or JSON Lines with ``file_name`` and 0/1 factor columns) or,
given the word ``imagenet-x``, from the ``imagenet-x`` package's own files (its validation and
training "multi factor" annotations: every factor an annotator marked, not only the top one;
licence CC BY-NC 4.0, README). They are joined on the file name without folder and suffix, so
``ILSVRC2012_val_00000001.JPEG`` and ``val/ILSVRC2012_val_00000001`` meet. Every image of the
table is accounted for: matched, not annotated, or with a name two of the table's images share
(not joined); the counts say how many of each.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biasprobe.analysis.columns import float_values
from biasprobe.analysis.stats import Estimate, _resample_ranks, bootstrap_rows, mean_estimate, ratio_estimate
from biasprobe.core.errors import InputError
from biasprobe.data.imagenet_layout import file_key

__all__ = [
    "IMAGENET_X",
    "POSE_SIZE_FACTORS",
    "FactorAnalysis",
    "FactorJoin",
    "FactorTable",
    "analyse_factors",
    "auc_estimate",
    "imagenet_x_files",
    "join_factors",
    "read_factors",
]

IMAGENET_X = "imagenet-x"
"""The word that means the annotations installed with the ``imagenet-x`` package."""

IMAGENET_X_FILES = ("imagenet_x_val_multi_factor.jsonl", "imagenet_x_train_multi_factor.jsonl")

POSE_SIZE_FACTORS = ("pose", "larger", "smaller")
"""ImageNet-X's factors about where and how the object is in the frame: the photographer's bias."""

NOT_FACTORS = frozenset({"file_name", "class", "label", "justification", "one_word"})


@dataclass(frozen=True)
class FactorTable:
    """One row per annotated image: ``key`` (``data.imagenet_layout.file_key`` of its file name: no folder, no suffix) and one 0/1 column per
    factor; ``ignored``: the columns that are not factors (not 0/1), for messages."""

    frame: pd.DataFrame
    factors: tuple[str, ...]
    source: str
    ignored: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)


def imagenet_x_files() -> list[Path]:
    """The annotation files the ``imagenet-x`` package installed; ``InputError`` when it is absent."""
    spec = importlib.util.find_spec("imagenet_x")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("--factors imagenet-x needs the imagenet-x package: pip install 'biasprobe-cnn[imagenetx]' "
                         "(its annotations are CC BY-NC 4.0), or give a factor file (CSV or JSONL with file_name)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "annotations"
    files = [folder / name for name in IMAGENET_X_FILES]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(f"the installed imagenet-x package lacks {', '.join(missing)} in {folder}: reinstall it")
    return files


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}, line {number}: not a JSON object ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
                row["_line"] = number
                rows.append(row)
    except OSError as exc:
        raise InputError(f"cannot read factor file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read factor file {path}: it is not UTF-8 text") from exc
    return rows


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise InputError(f"{path}, line {reader.line_num}: expected {len(reader.fieldnames or [])} fields")
                row["_line"] = reader.line_num
                rows.append(dict(row))
            return rows
    except OSError as exc:
        raise InputError(f"cannot read factor file {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read factor file {path}: {exc}") from exc


def _flag(value: object) -> int | None:
    """0 or 1 for a factor cell (0/1, true/false, '0'/'1'); None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false", "0.0", "1.0"):
        return 1 if value.strip().lower() in ("1", "true", "1.0") else 0
    return None


def _table(rows: list[dict], source: str) -> FactorTable:
    if not rows:
        raise InputError(f"factor file {source} holds no annotations")
    columns = list(dict.fromkeys(k for row in rows for k in row if k != "_line"))
    if "file_name" not in columns:
        raise InputError(f"factor file {source} needs a file_name column beside its 0/1 factor columns, got {columns[:6]}")
    records = pd.DataFrame.from_records(rows)
    factors, ignored = [], []
    flags: dict[str, np.ndarray] = {}
    for column in columns:
        if column in NOT_FACTORS:
            if column != "file_name":
                ignored.append(column)
            continue
        values = records[column]
        try:
            uniques = values.unique() if not values.isna().any() else None
        except TypeError:  # lists or objects: not a factor
            uniques = None
        mapping = {u: _flag(u) for u in uniques} if uniques is not None and len(uniques) <= 8 else {}
        if mapping and all(v is not None for v in mapping.values()):
            factors.append(column)
            flags[column] = values.map(mapping).to_numpy(dtype=np.int8)
        else:
            ignored.append(column)
    if not factors:
        raise InputError(f"factor file {source} has no factor column (0/1 values in every row) beside file_name")
    seen: dict[str, int] = {}
    keys = []
    for row in rows:
        name = row.get("file_name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{source}, line {row['_line']}: empty or missing file_name")
        key = file_key(name.strip())
        if key in seen:
            raise InputError(f"{source}, line {row['_line']}: {name!r} is annotated again (first on line {seen[key]})")
        seen[key] = row["_line"]
        keys.append(key)
    frame = pd.DataFrame({"key": keys, **{f: flags[f] for f in factors}})
    return FactorTable(frame, tuple(factors), source, tuple(ignored))


def read_factors(spec: str | Path) -> FactorTable:
    """Factor annotations from a CSV or JSON Lines file, or ``imagenet-x`` (the installed package's)."""
    if str(spec) == IMAGENET_X:
        rows = [row for path in imagenet_x_files() for row in _read_jsonl(path)]
        return _table(rows, "imagenet-x (installed package: validation and training multi-factor annotations)")
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"factor file not found: {path} (a CSV or JSONL with file_name and 0/1 factor columns, or {IMAGENET_X})")
    rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    return _table(rows, str(path))


@dataclass(frozen=True)
class FactorJoin:
    """A table's rows with the factor columns joined (``frame``: matched rows only), and what
    happened to each of its images."""

    frame: pd.DataFrame
    images: int
    matched: int
    not_annotated: int
    shared_names: int
    annotations_unused: int
    examples_not_annotated: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: how many matched, and how many did not and why."""
        parts = [f"{self.matched} of {self.images} images matched an annotation by file name"]
        if self.not_annotated:
            shown = ", ".join(self.examples_not_annotated)
            parts.append(f"{self.not_annotated} {'has' if self.not_annotated == 1 else 'have'} none (e.g. {shown})")
        if self.shared_names:
            parts.append(f"{self.shared_names} share their file name with another image of the tables and are not joined")
        parts.append(f"{self.annotations_unused} annotations name no image of the tables")
        return "; ".join(parts)


def join_factors(table: pd.DataFrame, factors: FactorTable) -> FactorJoin:
    """Join ``factors`` to a table with a ``path`` column (a scores or invariance table, or their
    join; one row per image) by file name without folder and suffix."""
    if "path" not in table.columns:
        raise InputError("the table has no path column: factors are joined by the image's file name")
    keys = table["path"].astype(str).map(file_key)
    counts = keys.value_counts()
    shared = keys.map(counts).to_numpy() > 1
    lookup = factors.frame.set_index("key")
    annotated = keys.isin(lookup.index).to_numpy()
    use = annotated & ~shared
    frame = table.loc[use].copy()
    frame["factor_key"] = keys[use].to_numpy()
    frame = frame.join(lookup, on="factor_key")
    not_annotated = table.loc[~annotated & ~shared, "path"].astype(str)
    used_keys = set(keys[annotated].tolist())
    return FactorJoin(
        frame=frame.reset_index(drop=True),
        images=len(table),
        matched=int(use.sum()),
        not_annotated=len(not_annotated),
        shared_names=int(shared.sum()),
        annotations_unused=len(factors) - len(used_keys),
        examples_not_annotated=tuple(not_annotated.head(2).tolist()),
    )


def _auc_rows(codes: np.ndarray, positive: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """AUC (Mann-Whitney, ties counted half) of each resample row of ``idx``."""
    ranks = _resample_ranks(codes, idx)
    pos = positive[idx]
    n1 = pos.sum(axis=1).astype(float)
    n0 = idx.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n0 > 0), ((ranks * pos).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0), np.nan)


def auc_estimate(scores: np.ndarray, flagged: np.ndarray, *, seed: int = 0) -> Estimate:
    """ROC AUC of ``scores`` separating ``flagged`` images from the rest (scikit-learn's
    ``roc_auc_score``), with a bootstrap 95% CI over images (images without a score dropped).
    1.0: every flagged image scores above every other; 0.5: chance; 0.0: every one below."""
    from sklearn.metrics import roc_auc_score

    s = np.asarray(scores, dtype=float)
    y = np.asarray(flagged, dtype=bool)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    n = int(s.size)
    if n == 0 or y.all() or not y.any():
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    value = float(roc_auc_score(y, s))
    codes = np.unique(s, return_inverse=True)[1]
    lo, hi = bootstrap_rows(lambda idx: _auc_rows(codes, y, idx), n, seed=seed)
    return Estimate(value, lo, hi, n)


@dataclass(frozen=True)
class FactorRow:
    """One factor (or 'all annotated images'): how many images carry it, their P(top-1 change)
    and mean atypicality with CIs."""

    factor: str
    n: int
    share: float
    p_change: Estimate
    atypicality: Estimate


@dataclass(frozen=True)
class FactorAnalysis:
    """Per factor figures and the AUC of atypicality for the pose/size factors."""

    join: FactorJoin
    rows: tuple[FactorRow, ...]
    auc: Estimate
    auc_factors: tuple[str, ...]
    auc_flagged: int
    has_atypicality: bool
    ignored: tuple[str, ...] = field(default_factory=tuple)

    @property
    def auc_factors_text(self) -> str:
        """The AUC's factors in words: 'pose, larger or smaller'."""
        return _either(self.auc_factors)

    def auc_sentence(self) -> str:
        """What the AUC says, in words computed from its numbers."""
        names = _either(self.auc_factors)
        if not self.has_atypicality:
            return "No atypicality (no scores table): the AUC cannot be computed."
        a = self.auc
        if not math.isfinite(a.value):
            return (f"The AUC needs images both flagged with {names} and not, with an atypicality: "
                    f"{self.auc_flagged} of {a.n} are flagged.")
        head = (f"Picking one image people flagged with {names} and one they did not, the flagged one is the more "
                f"atypical {a.value:.0%} of the time (AUC {a.value:.3f}")
        if not (math.isfinite(a.ci_low) and math.isfinite(a.ci_high)):
            return head + f", n = {a.n}; no CI)."
        head += f", 95% CI [{a.ci_low:.3f}, {a.ci_high:.3f}], {self.auc_flagged} of {a.n} images flagged): "
        if a.ci_low > 0.5:
            return head + "the kNN atypicality agrees with human judgement of unusual pose or size better than chance."
        if a.ci_high < 0.5:
            return head + ("the kNN atypicality ranks them the other way: images people call unusual in pose or size "
                           "are nearer to the training set than the rest.")
        return head + ("the CI includes 0.5, so these images cannot tell whether the kNN atypicality separates them "
                       "better than chance.")


def _either(names: Sequence[str]) -> str:
    """'pose, larger or smaller'."""
    names = list(names)
    if not names:
        return "pose or size"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def analyse_factors(table: pd.DataFrame, factors: FactorTable, *, seed: int = 0,
                    auc_factors: Sequence[str] = POSE_SIZE_FACTORS) -> FactorAnalysis:
    """Per factor: images flagged, P(top-1 change) (sum flips / sum pairs, when the table has
    them) and mean atypicality (when it has it), with bootstrap CIs; and the AUC of atypicality
    separating images flagged with any of ``auc_factors`` from the other annotated images.
    ``table``: one row per image (one model and protocol of an invariance table, a scores
    table, or their join)."""
    join = join_factors(table, factors)
    frame = join.frame
    has_change = {"flips", "pairs"} <= set(frame.columns)
    has_atyp = "atypicality" in frame.columns
    nan = Estimate(float("nan"), float("nan"), float("nan"), 0)
    flips = float_values(frame["flips"]) if has_change else None
    pairs = float_values(frame["pairs"]) if has_change else None
    atyp = float_values(frame["atypicality"]) if has_atyp else None

    def row(name: str, mask: np.ndarray) -> FactorRow:
        count = int(mask.sum())
        p = ratio_estimate(flips[mask], pairs[mask], seed=seed) if flips is not None and pairs is not None and count else nan
        a = mean_estimate(atyp[mask], seed=seed) if atyp is not None and count else nan
        return FactorRow(name, count, count / len(frame) if len(frame) else float("nan"), p, a)

    everything = np.ones(len(frame), dtype=bool)
    rows = [row("all annotated images", everything)]
    rows += [row(f, frame[f].to_numpy() == 1) for f in factors.factors]
    used = tuple(f for f in auc_factors if f in factors.factors)
    flagged = (frame[list(used)].to_numpy() == 1).any(axis=1) if used and len(frame) else np.zeros(len(frame), dtype=bool)
    auc = auc_estimate(atyp, flagged, seed=seed) if atyp is not None and used else nan
    scored = np.isfinite(atyp) if atyp is not None else np.ones(len(frame), dtype=bool)
    return FactorAnalysis(join, tuple(rows), auc, used, int(flagged[scored].sum()), has_atyp, factors.ignored)
