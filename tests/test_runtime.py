"""The runtime's accepted devices and precisions, and its refusals."""

from __future__ import annotations

import json

import pytest
import torch

from biasprobe.core.errors import InputError
from biasprobe.engine.runtime import DEVICES, PRECISIONS, Runtime, fp32_math, select_device, set_fp32_math


def test_choices_are_the_ones_the_runtime_accepts() -> None:
    assert DEVICES == ("auto", "cpu", "cuda") and PRECISIONS == ("fp32", "bf16")
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_refusals_name_the_choices() -> None:  # refused before threads or malloc are touched
    with pytest.raises(InputError, match=r"^--device must be auto, cpu or cuda, got 'tpu'$"):
        select_device("tpu")
    with pytest.raises(InputError, match=r"^--precision must be fp32 or bf16, got 'fp16'$"):
        Runtime.create(device="cpu", threads=1, precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU is available"):
            select_device("cuda")


def test_fp32_is_ieee_after_create_and_recorded() -> None:
    set_fp32_math(ieee=False)  # as a TF32 default would leave them
    assert fp32_math()["tf32"] is True
    runtime = Runtime.create(device="cpu", threads=1, precision="fp32")
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction is False
    assert torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction is False
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None:  # torch >= 2.9: the per-operation API reads IEEE too (cuDNN's default is TF32)
        assert conv.fp32_precision == "ieee" and torch.backends.cuda.matmul.fp32_precision == "ieee"
    recorded = runtime.to_dict()
    assert recorded["fp32_math"] == "ieee" and recorded["tf32"] is False and recorded["reduced_precision_reduction"] is False
    assert json.loads(json.dumps(recorded)) == recorded  # goes into JSON as it is


def test_bf16_stays_opt_in_and_fp32_math_stays_ieee() -> None:
    fp32 = Runtime.create(device="cpu", threads=1)
    assert fp32.precision == "fp32" and not fp32.autocast()._enabled
    bf16 = Runtime.create(device="cpu", threads=1, precision="bf16")
    assert bf16.to_dict()["fp32_math"] == "ieee"  # what autocast leaves in fp32 is IEEE fp32
    x = torch.ones(2, 4)
    with torch.inference_mode(), bf16.autocast():
        assert (x @ x.T).dtype == torch.bfloat16
    with torch.inference_mode(), fp32.autocast():
        assert (x @ x.T).dtype == torch.float32


def test_to_input_moves_uint8_views_as_they_are_in_channels_last() -> None:
    runtime = Runtime.create(device="cpu", threads=1)
    views = torch.arange(2 * 4 * 3 * 3, dtype=torch.uint8).reshape(2, 4, 3, 3)
    moved = runtime.to_input(views)
    assert moved.dtype == torch.uint8 and moved.device == runtime.device and torch.equal(moved, views)
    assert moved.is_contiguous(memory_format=torch.channels_last)
