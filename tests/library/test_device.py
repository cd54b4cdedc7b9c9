"""Tests for resnet_course.device: every branch driven through what it reads (no GPU needed).

The branches are chosen by ``torch.cuda.is_available``, ``torch.backends.mps.is_available``,
``torch.cuda.get_device_capability``, ``torch.cuda.is_bf16_supported``, the CPU capabilities
PyTorch reports and ``/proc/cpuinfo``; each test replaces
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
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    fake_cpu(monkeypatch, caps)
    assert dev.bf16_is_fast(CPU) is expected


@pytest.mark.parametrize(
    "isa, expected",
    [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_VNNI", False),
     ("AVX512_CORE_BF16", True), ("AVX10_1_512_AMX", True), ("ALL", True), ("", True),
     ("NOT_AN_ISA", True)],
)
def test_a_onednn_isa_cap_below_bf16_means_no_native_bf16(monkeypatch, isa, expected):
    """Held to AVX2 (ONEDNN_MAX_CPU_ISA), oneDNN emulates bf16 on a CPU that has AVX512-BF16:
    the bf16 loop ran 0.15x as fast as fp32 there, so bf16 must not be reported fast."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    fake_cpu(monkeypatch, {"avx512": True, "avx512_bf16": True})
    assert dev.bf16_is_fast(CPU) is expected
    assert dev.cpu_capabilities()["avx512_bf16"] is expected
    assert dev.cpu_capabilities()["avx512"] is True  # only bf16 features are masked


def test_amx_needs_the_amx_isa(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    fake_cpu(monkeypatch, {"avx512_bf16": False, "amx_bf16": True})
    assert dev.cpu_capabilities()["amx_bf16"] is False
    assert dev.bf16_is_fast(CPU) is False


@pytest.mark.parametrize(
    "capability, expected",
    [((7, 5), False), ((7, 0), False), ((8, 0), True), ((8, 6), True), ((9, 0), True)],
    ids=["T4", "V100", "A100", "RTX-30", "H100"],
)
def test_bf16_on_cuda_needs_ampere_or_later(monkeypatch, capability, expected):
    # the CPU's flags must not matter for a GPU, and PyTorch's default is_bf16_supported()
    # (True on a T4 or V100, where bf16 is emulated) must not decide it either
    fake_cpu(monkeypatch, {"avx512_bf16": not expected})
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert dev.bf16_is_fast(CUDA) is expected


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_rocm_asks_without_emulation(monkeypatch, native):
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return native

    monkeypatch.setattr(torch.version, "hip", "6.0")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert dev.bf16_is_fast(CUDA) is native and asked == [False]


@pytest.mark.parametrize(
    "machine, features, expected",
    [
        ("aarch64", "fp asimd sve i8mm bf16", True),  # Graviton3
        ("aarch64", "fp asimd asimddp", False),  # Graviton2: no BF16 extension
        ("x86_64", "fp asimd bf16", False),  # the ARM test is for ARM CPUs only
    ],
)
def test_bf16_on_arm_cpus_reads_the_bf16_feature(monkeypatch, tmp_path, machine, features,
                                                 expected):  # fmt: skip
    fake_cpu(monkeypatch, {"avx512_bf16": False, "amx_bf16": False})
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nFeatures\t: {features}\n")
    real_path = dev.Path
    monkeypatch.setattr(
        dev, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p)
    )
    monkeypatch.setattr(dev.platform, "machine", lambda: machine)
    monkeypatch.setattr(dev.platform, "system", lambda: "Linux")
    assert dev.bf16_is_fast(CPU) is expected


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
