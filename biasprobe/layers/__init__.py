"""Layers (docs/protocols.md section 7): where in the network a 1-pixel step changes the
representation: probe points, the per-image layer profile, resumable runs, the summary."""

from biasprobe.layers.probes import (
    EMBEDDING,
    ProbeCapture,
    ProbePoint,
    find_probe_points,
    model_probes,
    total_stride,
)
from biasprobe.layers.profile import ProbeLayout, cosine_distance, layer_changes, spread
from biasprobe.layers.run import LayersResult, measure_layers, run_layers, sequence_protocols, write_layers
from biasprobe.layers.summary import LayersSummary, probe_figures

__all__ = [
    "EMBEDDING",
    "LayersResult",
    "LayersSummary",
    "ProbeCapture",
    "ProbeLayout",
    "ProbePoint",
    "cosine_distance",
    "find_probe_points",
    "layer_changes",
    "measure_layers",
    "model_probes",
    "probe_figures",
    "run_layers",
    "sequence_protocols",
    "spread",
    "total_stride",
    "write_layers",
]
