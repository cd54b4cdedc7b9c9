"""Tests for resnet_course.device: every branch driven through what it reads (no GPU needed).

The branches are chosen by ``torch.cuda.is_available``, ``torch.backends.mps.is_available``,
``torch.cuda.is_bf16_supported`` and the CPU capabilities PyTorch reports; each test replaces
those with monkeypatch, so each branch runs here whatever this machine's CPU or GPU is.
"""

import pytest
import torch

from resnet_course import device as dev

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


def fake_machine(monkeypatch, cuda: bool, mps: bool | None) -> None:
    """``mps=None``: a PyTorch build without the MPS backend."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if mps is None:
        monkeypatch.delattr(torch.backends, "mps", raising=False)
    else:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [
        (True, True, "cuda"),  # CUDA wins over MPS
        (True, False, "cuda"),
        (False, True, "mps"),
        (False, False, "cpu"),
        (False, None, "cpu"),
    ],
)
def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    fake_machine(monkeypatch, cuda, mps)
    assert dev.pick_device() == torch.device(expected)


def fake_cpu(monkeypatch, caps: dict | None) -> None:
    """``caps=None``: a PyTorch build without ``torch.cpu.get_capabilities``."""
    if caps is None:
        monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(caps))


@pytest.mark.parametrize(
    "caps, expected",
    [
        ({"avx512_bf16": True}, True),
        ({"amx_bf16": True}, True),
        ({"avx512_bf16": True, "amx_bf16": True}, True),
        ({"avx2": True, "avx512": True, "avx512_bf16": False, "amx_bf16": False}, False),
        ({}, False),
        (None, False),
    ],
    ids=["avx512_bf16", "amx_bf16", "both", "avx512-without-bf16", "no-flags", "no-api"],
)
def test_bf16_on_cpu_follows_the_native_bf16_flags(monkeypatch, caps, expected):
    fake_cpu(monkeypatch, caps)
    assert dev.bf16_is_fast(CPU) is expected


@pytest.mark.parametrize("supported", [True, False])
def test_bf16_on_cuda_asks_cuda(monkeypatch, supported):
    # the CPU's flags must not matter for a GPU
    fake_cpu(monkeypatch, {"avx512_bf16": not supported})
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
    assert dev.bf16_is_fast(CUDA) is supported


def test_bf16_on_mps_stays_off(monkeypatch):
    fake_cpu(monkeypatch, {"avx512_bf16": True, "amx_bf16": True})
    assert dev.bf16_is_fast(MPS) is False


def test_device_name_of_the_cpu_uses_the_reported_name_and_threads(monkeypatch):
    fake_cpu(monkeypatch, {"cpu_name": "Test CPU 9000"})
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert dev.device_name(CPU) == "Test CPU 9000 (1 thread)"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert dev.device_name(CPU) == "Test CPU 9000 (4 threads)"
    fake_cpu(monkeypatch, None)  # no name reported: falls back to the platform's
    assert dev.device_name(CPU).endswith("(4 threads)") and len(dev.device_name(CPU)) > 11


def test_device_name_of_a_gpu_asks_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"GPU for {device}")
    assert dev.device_name(CUDA) == "GPU for cuda"
    assert dev.device_name(MPS) == "mps"


def test_synchronize_waits_only_on_the_device_given(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: calls.append(("cuda", device)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append(("mps", None)))
    dev.synchronize(CPU)  # nothing to wait for
    assert calls == []
    dev.synchronize(CUDA)
    dev.synchronize(MPS)
    assert calls == [("cuda", CUDA), ("mps", None)]


def test_trainer_and_benchmark_use_these_helpers():
    """One copy: train, train_cifar and bench take the device helpers from here."""
    from resnet_course import bench, train, train_cifar

    assert train.pick_device is dev.pick_device
    assert train_cifar.bf16_is_fast is dev.bf16_is_fast
    assert bench.bf16_is_fast is dev.bf16_is_fast and bench.synchronize is dev.synchronize
