"""Which device to train on, and what it offers.

``pick_device`` chooses, ``bf16_is_fast`` says whether bfloat16 autocast pays off there,
``synchronize`` waits for queued GPU work (before reading a clock), and ``device_name`` names the
processor for reports. The trainer (``train``, ``train_cifar``) and the benchmark (``bench``)
all take them from here.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

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


def cuda_has_native_bf16(device: torch.device) -> bool:
    """Whether the CUDA (or ROCm) GPU behind ``device`` has native bf16.

    NVIDIA GPUs have bf16 tensor cores from compute capability 8.0 (Ampere)
    on. ``torch.cuda.is_bf16_supported()`` alone is not the test: with its
    default ``including_emulation=True`` it also answers True on a T4 or V100
    (7.x), which run bf16 by emulation, slower than fp32. AMD GPUs under ROCm
    count as native.
    """
    if torch.version.hip:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def _arm_cpu_has_bf16() -> bool:
    """Whether an ARM CPU has the ARMv8.6 BF16 instructions (Graviton3, Apple
    M2 and later)."""
    caps = cpu_capabilities()
    if any(caps.get(key) for key in ("bf16", "arm_bf16", "sve_bf16")):
        return True
    if platform.system() == "Linux":
        try:  # the kernel lists "bf16" among a core's Features
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return any(
            line.startswith("Features")
            and "bf16" in line.split(":", 1)[1].split()
            for line in cpuinfo.splitlines()
        )
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"],
                                 capture_output=True, text=True, timeout=5)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return False
        return out.stdout.strip() == "1"
    return False


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast should speed up training on ``device``.

    CUDA GPUs from Ampere on (compute capability 8.0) and recent AMD GPUs have
    bf16 tensor cores; older ones (Colab's T4, a V100) only emulate bf16. A CPU
    pays off only with native bf16 instructions: AVX512-BF16 or Intel's AMX on
    x86, the ARMv8.6 BF16 extension on ARM (Graviton3, Apple M2 and later);
    elsewhere PyTorch emulates bf16 with fp32 arithmetic plus conversions,
    which is slower than plain fp32.
    """
    if device.type == "cuda":
        return cuda_has_native_bf16(device)
    if device.type == "cpu":
        caps = cpu_capabilities()
        if caps.get("avx512_bf16") or caps.get("amx_bf16"):
            return True
        arm = platform.machine().lower() in ("arm64", "aarch64")
        return arm and _arm_cpu_has_bf16()
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
