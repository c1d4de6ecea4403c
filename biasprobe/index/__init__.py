"""Typicality: embed a training set, index it with FAISS, score images against it
(``biasprobe index build``, ``biasprobe score``)."""

from biasprobe.index.build import build_index
from biasprobe.index.meta import IndexMeta, ModelSignature
from biasprobe.index.score import ScoreResult, score_images
from biasprobe.index.summaries import ScoreSummary
from biasprobe.index.training_index import TrainingIndex

__all__ = ["IndexMeta", "ModelSignature", "ScoreResult", "ScoreSummary", "TrainingIndex", "build_index", "score_images"]
