"""Where the model runs and how fast: device choice, threads, glibc malloc tuning,
channels_last, inference mode and the floating-point mode, all in one place.

fp32 means IEEE fp32 on every device: ``Runtime.create`` turns TF32 off for CUDA matmuls and
cuDNN convolutions (this torch's cuDNN default is TF32) and reduced-precision reductions off,
whatever the precision asked for (bf16 runs only what autocast puts in bf16), and
``to_dict`` records the flags as read back from torch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from biasprobe.engine.choices import DEVICES, PRECISIONS
from biasprobe.engine.malloc_tuning import malloc_tuned, tune_malloc

ModuleT = TypeVar("ModuleT", bound=nn.Module)

__all__ = ["DEVICES", "PRECISIONS", "Runtime", "fp32_math", "select_device", "set_fp32_math", "set_threads"]


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


def _precision_settings() -> dict[str, object]:
    """torch's per-operation fp32 precision API (torch >= 2.9), where present: name -> the object
    under ``torch.backends`` whose ``fp32_precision`` sets that operation's precision."""
    backends = torch.backends
    found: dict[str, object] = {}
    for name, owner in (("cuda.matmul", backends.cuda.matmul), ("cudnn.conv", getattr(backends.cudnn, "conv", None)),
                        ("cudnn.rnn", getattr(backends.cudnn, "rnn", None))):  # fmt: skip
        if owner is not None and _readable(owner, "fp32_precision"):
            found[name] = owner
    return found


def _readable(owner: object, name: str) -> bool:
    try:
        getattr(owner, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def set_fp32_math(ieee: bool = True) -> None:
    """IEEE fp32 (``ieee``) or TF32 for CUDA matmuls and cuDNN convolutions, through whichever API
    this torch has; reduced-precision reductions off with ``ieee``. Harmless without a GPU.

    The legacy switches go first: in torch >= 2.9 they also reset the per-operation settings,
    which are then set explicitly, so the two APIs never disagree (reading a legacy flag over a
    mix raises there).
    """
    matmul = torch.backends.cuda.matmul
    with warnings.catch_warnings():  # torch >= 2.9 warns once that the legacy switches will go
        warnings.simplefilter("ignore", UserWarning)
        matmul.allow_tf32 = not ieee
        torch.backends.cudnn.allow_tf32 = not ieee
    for name in ("allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction"):
        if _readable(matmul, name):
            setattr(matmul, name, not ieee)
    for owner in _precision_settings().values():
        owner.fp32_precision = "ieee" if ieee else "tf32"  # type: ignore[attr-defined]


def fp32_math() -> dict[str, object]:
    """The floating-point flags as torch reports them now: ``fp32_math`` ("ieee" or "tf32"),
    ``tf32`` (any of matmul / convolution on TF32), ``reduced_precision_reduction``, and the
    per-operation settings when this torch has them."""
    per_op = {name: str(owner.fp32_precision) for name, owner in _precision_settings().items()}  # type: ignore[attr-defined]
    legacy = []
    for owner, name in ((torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                legacy.append(bool(getattr(owner, name)))
        except RuntimeError:  # torch >= 2.9 refuses to answer over a mix of the two APIs: not known to be IEEE
            legacy.append(True)
    tf32 = any(legacy) or any(v == "tf32" for v in per_op.values())
    matmul = torch.backends.cuda.matmul
    reduced = any(bool(getattr(matmul, name)) for name in
                  ("allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction") if _readable(matmul, name))  # fmt: skip
    return {"fp32_math": "tf32" if tf32 else "ieee", "tf32": tf32, "reduced_precision_reduction": reduced,
            "fp32_precision": per_op}


@dataclass(frozen=True)
class Runtime:
    """Execution settings shared by every stage that runs a model."""

    device: torch.device
    threads: int
    precision: str = "fp32"
    channels_last: bool = True

    @classmethod
    def create(cls, *, device: str = "auto", threads: int | None = None, precision: str = "fp32") -> Runtime:
        """Apply the CPU fast path (malloc tuning, thread count), IEEE fp32 math, and pick the device."""
        from biasprobe.core.errors import InputError

        if precision not in PRECISIONS:
            raise InputError(f"--precision must be {_one_of(PRECISIONS)}, got {precision!r}")
        tune_malloc()
        chosen = select_device(device)
        set_fp32_math(ieee=True)
        return cls(device=chosen, threads=set_threads(threads), precision=precision)

    def prepare(self, model: ModuleT) -> ModuleT:
        """Eval mode on the device, channels_last memory format (in place; the same module back)."""
        model.eval().to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def to_input(self, batch: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Move a batch to the device in the model's memory format: the one place a batch travels.

        ``batch`` is a tensor or pieces to concatenate along the first axis. The stages send uint8
        views (a quarter of float32's bytes) and convert them on the device; to CUDA the pieces
        are concatenated straight into pinned memory (one copy, measured 14 ms of 38 MB batches
        otherwise) and the copy to the device does not wait.
        """
        pieces = [batch] if isinstance(batch, torch.Tensor) else list(batch)
        if self.device.type == "cuda" and pieces[0].device.type == "cpu":
            shape = (sum(p.shape[0] for p in pieces), *pieces[0].shape[1:])
            if all(p.is_pinned() for p in pieces):  # pinned by the decoding stream: piece by piece, no copy here
                out = torch.empty(shape, dtype=pieces[0].dtype, device=self.device)
                first = 0
                for piece in pieces:
                    out[first : first + piece.shape[0]].copy_(piece, non_blocking=True)
                    first += piece.shape[0]
            else:
                staged = torch.empty(shape, dtype=pieces[0].dtype, pin_memory=True)
                torch.cat(pieces, out=staged)
                out = staged.to(self.device, non_blocking=True)
        else:
            out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
            out = out.to(self.device)
        if self.channels_last and out.dim() == 4:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def autocast(self) -> torch.autocast:
        """bf16 autocast when asked for (a screening mode), otherwise a disabled context."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def to_dict(self) -> dict[str, object]:
        """The runtime block of every output: settings, and the floating-point flags read back from torch."""
        return {"device": str(self.device), "threads": self.threads, "precision": self.precision,
                "channels_last": self.channels_last, "malloc_tuned": malloc_tuned(), **fp32_math()}
