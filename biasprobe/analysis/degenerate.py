"""Degenerate predictions (docs/protocols.md section 3.4): a model that gives (nearly) the same
answer to every view cannot change its answer, so its P(top-1 change) near 0 and consistency near
1 say nothing about shift invariance (a randomly initialised network often does this).

Rule, per model and protocol: the predictions are *constant* when at least ``MIN_IMAGES`` images
were measured and one class is the top-1 of at least ``CONSTANT_SHARE`` (95%) of all views (of the
first views, ``top0``, when there is no views table); unless at least half of the images have a
label and that class is the label of at least 95% of them, where a constant answer is the right one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biasprobe.analysis.order import protocol_order

__all__ = [
    "CONSTANT_SHARE", "MIN_IMAGES", "PredictionSpread", "constant_predictions", "model_warnings", "prediction_spread",
]  # fmt: skip

CONSEQUENCE = ("A model that always gives the same answer cannot change it, so its P(top-1 change) and consistency "
               "say nothing about shift invariance (an untrained or broken model?).")

CONSTANT_SHARE = 0.95
MIN_IMAGES = 5


@dataclass(frozen=True)
class PredictionSpread:
    """How the top-1 answers of one model on one protocol spread over the classes."""

    model: str
    protocol: str
    n_images: int
    n_answers: int
    """Answers counted: every view, or every image's first view (``basis``)."""
    basis: str
    """'views' (the views table's ``top1``) or 'first views' (the images' ``top0``)."""
    modal_class: int
    modal_name: str
    modal_share: float
    """Share of the answers that are ``modal_class``."""
    n_classes: int
    """Distinct top-1 classes among the answers."""
    label_share: float = float("nan")
    """Share of the labelled images whose label is ``modal_class`` (NaN without labels)."""

    @property
    def constant(self) -> bool:
        """The rule of the module docstring."""
        expected = math.isfinite(self.label_share) and self.label_share >= CONSTANT_SHARE
        return self.n_images >= MIN_IMAGES and self.modal_share >= CONSTANT_SHARE and not expected

    @property
    def class_text(self) -> str:
        """'class 3' or 'class 3 (three)'."""
        name = self.modal_name if self.modal_name and self.modal_name != str(self.modal_class) else ""
        return f"class {self.modal_class}" + (f" ({name})" if name else "")

    def text(self) -> str:
        """One sentence on the spread: 'class 3 is the top-1 of 100.0% of 9,720 views (1 distinct class, 1,080 images)'."""
        classes = f"{self.n_classes} distinct class" + ("" if self.n_classes == 1 else "es")
        return (f"{self.class_text} is the top-1 of {100 * self.modal_share:.1f}% of {self.n_answers:,} "
                f"{self.basis} ({classes}, {self.n_images:,} images)")

    def warning(self) -> str:
        """The flag as one line, or '' when the predictions are not constant."""
        if not self.constant:
            return ""
        return f"{self.model}, protocol {self.protocol}: predictions are (nearly) constant: {self.text()}. {CONSEQUENCE}"


def _modal(values: np.ndarray) -> tuple[int, float, int]:
    classes, counts = np.unique(values, return_counts=True)
    i = int(np.argmax(counts))  # the lowest class wins a tie
    return int(classes[i]), float(counts[i] / counts.sum()), int(classes.size)


def _groups(images: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame]]:
    models = images["model"].astype(str) if "model" in images.columns else pd.Series("model", index=images.index)
    protocols = images["protocol"].astype(str)
    for model in dict.fromkeys(models):
        of_model = images[models == model]
        names = protocols[models == model]
        for protocol in protocol_order(list(dict.fromkeys(names))):
            yield model, protocol, of_model[names == protocol]


def prediction_spread(images: pd.DataFrame, views: pd.DataFrame | None = None) -> list[PredictionSpread]:
    """One ``PredictionSpread`` per (model, protocol) of a per-image invariance table.

    ``views`` is the table's views companion (one model: ``image_id``, ``protocol``, ``top1``);
    without it, or where it has no rows for a protocol, the images' ``top0`` are counted.
    """
    if images.empty or "top0" not in images.columns:
        return []
    out = []
    for model, protocol, rows in _groups(images):
        ids = set(rows["image_id"].astype(str))
        answers, basis = np.zeros(0, dtype=np.int64), "views"
        if views is not None and not views.empty and {"protocol", "top1", "image_id"} <= set(views.columns):
            of_protocol = views[(views["protocol"].astype(str) == protocol) & views["image_id"].astype(str).isin(ids)]
            answers = pd.to_numeric(of_protocol["top1"], errors="coerce").dropna().to_numpy(dtype=np.int64)
        if answers.size == 0:
            answers = pd.to_numeric(rows["top0"], errors="coerce").dropna().to_numpy(dtype=np.int64)
            basis = "first views"
        if answers.size == 0:
            continue
        modal, share, n_classes = _modal(answers)
        names = rows.loc[pd.to_numeric(rows["top0"], errors="coerce") == modal, "top0_name"] \
            if "top0_name" in rows.columns else pd.Series(dtype=object)
        names = names.dropna()
        label_share = float("nan")
        if "label" in rows.columns:
            labels = pd.to_numeric(rows["label"], errors="coerce").dropna()
            if len(labels) and 2 * len(labels) >= len(rows):
                label_share = float((labels == modal).mean())
        out.append(PredictionSpread(
            model=model, protocol=protocol, n_images=int(rows["image_id"].nunique()), n_answers=int(answers.size),
            basis=basis, modal_class=modal, modal_name=str(names.iloc[0]) if len(names) else "", modal_share=share,
            n_classes=n_classes, label_share=label_share,
        ))
    return out


def constant_predictions(images: pd.DataFrame, views: pd.DataFrame | None = None) -> list[PredictionSpread]:
    """The (model, protocol) pairs of ``prediction_spread`` whose predictions are constant."""
    return [s for s in prediction_spread(images, views) if s.constant]


def model_warnings(spreads: Iterable[PredictionSpread]) -> list[str]:
    """One line per model with constant predictions, naming its flagged protocols (given order)."""
    flagged: dict[str, list[PredictionSpread]] = {}
    for s in spreads:
        if s.constant:
            flagged.setdefault(s.model, []).append(s)
    lines = []
    for model, items in flagged.items():
        names = [s.protocol for s in items]
        which = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        details = "; ".join(f"{s.protocol}: {s.text()}" for s in items[:2]) + ("; ..." if len(items) > 2 else "")
        lines.append(f"{model}: predictions are (nearly) constant under {which} ({details}). {CONSEQUENCE}")
    return lines
