"""The device setting: CPU by default, `auto` falls back to CPU, asking for CUDA without one is a clear error."""

from __future__ import annotations

import pytest
import torch

from models.text.classifier import ModelLoadError, resolve_device


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused_with_the_reason() -> None:
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        resolve_device("cuda")
