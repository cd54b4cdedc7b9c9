"""Which device to train on, and what it offers.

``pick_device`` chooses, ``bf16_is_fast`` says whether bfloat16 autocast pays off there,
``synchronize`` waits for queued GPU work (before reading a clock), and ``device_name`` names the
processor for reports. The trainer (``train``, ``train_cifar``) and the benchmark (``bench``)
all take them from here.
"""

from __future__ import annotations

import os
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


# oneDNN's instruction-set names (``ONEDNN_MAX_CPU_ISA``), lowest first; aliases share a rank
_ONEDNN_ISA_RANK = {
    "SSE41": 0, "AVX": 1, "AVX2": 2, "AVX2_VNNI": 3, "AVX2_VNNI_2": 4,
    "AVX512_CORE": 5, "AVX512_CORE_VNNI": 6, "AVX512_CORE_BF16": 7,
    "AVX512_CORE_FP16": 8, "AVX10_1_512": 8,
    "AVX512_CORE_AMX": 9, "AVX10_1_512_AMX": 9,
    "AVX512_CORE_AMX_FP16": 10, "AVX10_1_512_AMX_FP16": 10,
    "AVX10_2_512": 11, "AVX10_2_512_AMX_2": 12,
}  # fmt: skip
# the lowest cap under which oneDNN may still use a bf16 feature PyTorch reports
_BF16_FEATURE_NEEDS = {"avx512_bf16": "AVX512_CORE_BF16", "amx_bf16": "AVX512_CORE_AMX"}


def onednn_isa_cap() -> str | None:
    """The instruction set ``ONEDNN_MAX_CPU_ISA`` holds oneDNN to (e.g. ``"AVX2"``), or None
    when it is unset or names no cap (``ALL``, ``DEFAULT``, an unknown name)."""
    name = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return name if name in _ONEDNN_ISA_RANK else None


def cpu_capabilities() -> dict:
    """The CPU features PyTorch detected (e.g. ``avx512_bf16``), less the bf16 ones that
    ``ONEDNN_MAX_CPU_ISA`` forbids oneDNN to use (its kernels then take the emulated path, as
    on a CPU without them); {} on old PyTorch builds."""
    get = getattr(torch.cpu, "get_capabilities", None)
    caps = dict(get()) if get is not None else {}
    cap = onednn_isa_cap()
    if cap is not None:
        for key, needs in _BF16_FEATURE_NEEDS.items():
            if key in caps and _ONEDNN_ISA_RANK[cap] < _ONEDNN_ISA_RANK[needs]:
                caps[key] = False
    return caps


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
