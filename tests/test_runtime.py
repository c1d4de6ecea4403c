"""The runtime's accepted devices and precisions, and its refusals."""

from __future__ import annotations

import pytest
import torch

from biasprobe.core.errors import InputError
from biasprobe.engine.runtime import DEVICES, PRECISIONS, Runtime, select_device


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
