"""Which device to train on, and what it offers.

``pick_device`` chooses, ``bf16_is_fast`` says whether bfloat16 autocast pays off there,
``synchronize`` waits for queued GPU work (before reading a clock), and ``device_name`` names the
processor for reports. The trainer (``train``, ``train_cifar``) and the benchmark (``bench``)
all take them from here.
"""

from __future__ import annotations

import platform

import torch


def pick_device() -> torch.device:
    """The fastest device available: CUDA GPU, else Apple's MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_capabilities() -> dict:
    """The CPU features PyTorch detected (e.g. ``avx512_bf16``); {} on old PyTorch builds."""
    get = getattr(torch.cpu, "get_capabilities", None)
    return get() if get is not None else {}


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast should speed up training on ``device``.

    CUDA GPUs from Ampere on (and recent AMD GPUs) have bf16 tensor cores.
    A CPU pays off only with native bf16 instructions (AVX512-BF16, or
    Intel's AMX); elsewhere PyTorch emulates bf16 with fp32 arithmetic plus
    conversions, which is slower than plain fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        caps = cpu_capabilities()
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    # MPS: bf16 autocast support varies with the macOS version; stay in fp32
    return False


def device_name(device: torch.device) -> str:
    """A human-readable name of the processor behind ``device``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        caps = cpu_capabilities()
        name = caps.get("cpu_name") or platform.processor() or platform.machine()
        threads = torch.get_num_threads()
        return f"{name} ({threads} thread{'s' if threads > 1 else ''})"
    return device.type


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (GPU calls return
    before they finish)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
