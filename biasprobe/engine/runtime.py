"""Where the model runs and how fast: device choice, threads, glibc malloc tuning,
channels_last and inference mode, all in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from biasprobe.engine.choices import DEVICES, PRECISIONS
from biasprobe.engine.malloc_tuning import malloc_tuned, tune_malloc

ModuleT = TypeVar("ModuleT", bound=nn.Module)

__all__ = ["DEVICES", "PRECISIONS", "Runtime", "select_device", "set_threads"]


def _one_of(choices: tuple[str, ...]) -> str:
    """``('a', 'b', 'c')`` -> ``'a, b or c'``."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def select_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is an error."""
    from biasprobe.core.errors import InputError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu or auto)")
    if device not in DEVICES:
        raise InputError(f"--device must be {_one_of(DEVICES)}, got {device!r}")
    return torch.device(device)


def set_threads(threads: int | None) -> int:
    """Set torch (and FAISS, when imported) threads; default: every core this process may use."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads < 1:
        from biasprobe.core.errors import InputError

        raise InputError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:  # pragma: no cover - faiss is a dependency
        pass
    return threads


@dataclass(frozen=True)
class Runtime:
    """Execution settings shared by every stage that runs a model."""

    device: torch.device
    threads: int
    precision: str = "fp32"
    channels_last: bool = True

    @classmethod
    def create(cls, *, device: str = "auto", threads: int | None = None, precision: str = "fp32") -> Runtime:
        """Apply the CPU fast path (malloc tuning, thread count) and pick the device."""
        from biasprobe.core.errors import InputError

        if precision not in PRECISIONS:
            raise InputError(f"--precision must be {_one_of(PRECISIONS)}, got {precision!r}")
        tune_malloc()
        chosen = select_device(device)
        return cls(device=chosen, threads=set_threads(threads), precision=precision)

    def prepare(self, model: ModuleT) -> ModuleT:
        """Eval mode on the device, channels_last memory format (in place; the same module back)."""
        model.eval().to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        """Move a batch to the device in the model's memory format."""
        batch = batch.to(self.device, non_blocking=True)
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def autocast(self) -> torch.autocast:
        """bf16 autocast when asked for (a screening mode), otherwise a disabled context."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def to_dict(self) -> dict[str, object]:
        return {"device": str(self.device), "threads": self.threads, "precision": self.precision,
                "channels_last": self.channels_last, "malloc_tuned": malloc_tuned()}
