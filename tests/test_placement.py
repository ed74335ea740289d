"""Layer placement for --device / --n-gpu-layers. CI has no GPU: the split is checked with CUDA's availability
faked (torch.device("cuda") is only a name until a tensor goes there); the real GPU runs are in the README."""

from __future__ import annotations

import pytest
import torch

from hogar.errors import HogarError
from hogar.models.placement import place

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_cpu_by_default():
    p = place(4)
    assert p.layers == (CPU,) * 4 and p.output == CPU and p.on_cpu_only
    assert place(4, "cpu", 0).on_cpu_only


def test_first_layers_on_the_gpu(fake_cuda):
    p = place(4, "cpu", 2)
    assert p.layers == (GPU, GPU, CPU, CPU) and p.output == CPU
    assert p.tensor_device("blk.1.attn_q.weight") == GPU and p.tensor_device("blk.2.ffn_up.weight") == CPU
    assert p.tensor_device("token_embd.weight") == CPU and p.tensor_device("output.weight") == CPU
    assert place(4, "cpu", 4).output == CPU  # llama.cpp's -ngl: the output head is layer n_layer + 1
    assert place(4, "cpu", 5).output == GPU and place(4, "cpu", 99).layers == (GPU,) * 4


def test_device_cuda_is_everything(fake_cuda):
    p = place(3, "cuda")
    assert p.layers == (GPU,) * 3 and p.output == GPU and p.inputs == CPU
    assert place(3, "cuda:0", 1).layers == (torch.device("cuda:0"), CPU, CPU)


def test_cuda_mistakes_are_one_line_errors(fake_cuda):
    with pytest.raises(HogarError, match="does not exist"):
        place(2, "cuda:3")
    with pytest.raises(HogarError, match="0 or more"):
        place(2, "cpu", -1)
    with pytest.raises(HogarError, match="not supported|unknown device"):
        place(2, "tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_no_gpu_says_so():
    with pytest.raises(HogarError, match="no CUDA GPU"):
        place(2, "cpu", 1)
    with pytest.raises(HogarError, match="no CUDA GPU"):
        place(2, "cuda")
