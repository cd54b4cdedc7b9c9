"""Tests for resnet_course.bench: the batch source, argument checks, and a short real CPU run."""

import json
import subprocess
import sys

import pytest
import torch

from resnet_course import bench as bench_module
from resnet_course.bench import (
    ResidentBatches,
    batch_size_sweep,
    benchmark,
    data_feed_seconds,
    format_table,
    synthetic_cifar,
)

JSON_FIELDS = {"device", "model", "naive_img_s", "fast_img_s", "speedup", "torch", "date"}


def test_resident_batches_cover_each_example_once_per_pass():
    X = torch.arange(12.0).view(12, 1, 1, 1)  # example i holds the value i
    y = torch.arange(12)
    batches = list(ResidentBatches(X, y, batch_size=4, num_batches=3, seed=1))
    assert [tuple(b[0].shape) for b in batches] == [(4, 1, 1, 1)] * 3
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(12))  # a permutation: no repeats, none missing
    assert all(torch.equal(Xb.view(-1).long(), yb) for Xb, yb in batches)  # X and y stay paired
    assert seen.tolist() != list(range(12))  # shuffled


def test_resident_batches_keep_channels_last_and_refuse_small_data():
    X, y = synthetic_cifar(16)
    ((Xb, _),) = list(ResidentBatches(X, y, 8, 1, channels_last=True))
    assert Xb.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="batch_size"):
        ResidentBatches(X, y, batch_size=32, num_batches=1)


def test_feed_timing_and_batch_sweep_return_positive_measurements():
    feed = data_feed_seconds(batch_size=16, device=torch.device("cpu"), num_images=64)
    assert set(feed) == {"dataloader", "resident"} and min(feed.values()) > 0
    sweep = batch_size_sweep([2, 4], "resnet20", "cpu", steps=1, amp=False)
    assert [b for b, _ in sweep] == [2, 4] and all(img_s > 0 for _, img_s in sweep)
    with pytest.raises(ValueError, match="batch_size"):
        batch_size_sweep([0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "resnet21"}, "model"),
        ({"batch_size": 0}, "batch_size"),
        ({"steps": 2, "rounds": 3}, "rounds"),
        ({"warmup": -1}, "warmup"),
    ],
)
def test_benchmark_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        benchmark(device="cpu", **kwargs)


@pytest.mark.slow
def test_cpu_run_prints_json_with_both_loops_measured(tmp_path):
    # Speed itself is the benchmark's to report, not a test's to assert: on a shared machine a
    # neighbour's load can make either loop slower.
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable, "-m", "resnet_course.bench", "--device", "cpu", "--model", "resnet20",
        "--batch-size", "32", "--steps", "6", "--rounds", "6", "--warmup", "1",
        "--threads", "1", "--json", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert JSON_FIELDS <= result.keys()
    assert result["device"] == "cpu" and result["model"] == "resnet20"
    assert json.loads(out.read_text()) == result
    assert len(result["naive_round_img_s"]) == len(result["fast_round_img_s"]) == 6
    assert result["speedup"] == pytest.approx(result["fast_img_s"] / result["naive_img_s"], 0.01)
    assert min(result["naive_round_img_s"] + result["fast_round_img_s"]) > 0
    table = format_table(result)
    assert "naive" in table and "fast" in table and f"{result['speedup']:.2f}x" in table


def test_compile_is_a_third_loop_of_the_same_rounds_with_one_cudnn_flag(monkeypatch):
    """--compile times the fast loop with and without torch.compile in the same rounds, so
    compile_speedup is compiling's own share; every loop runs under the same cudnn flag, and
    the flag is restored. The trainers are replaced by fakes with known step times."""
    seconds_per_step = {"naive": 0.4, "fast": 0.2, "compiled": 0.1}
    flags_seen = []

    def fake(name):
        def run(num_steps):
            flags_seen.append((name, torch.backends.cudnn.benchmark))
            return seconds_per_step[name] * num_steps

        return run

    monkeypatch.setattr(bench_module, "naive_trainer", lambda *a, **k: fake("naive"))
    monkeypatch.setattr(
        bench_module,
        "fast_trainer",
        lambda *a, compile=False, **k: fake("compiled" if compile else "fast"),
    )
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    result = benchmark(device="cpu", batch_size=8, steps=4, warmup=1, rounds=2, compile=True,
                       amp=False)  # fmt: skip
    assert result["naive_img_s"] == 20 and result["uncompiled_img_s"] == 40
    assert result["fast_img_s"] == 80 and result["compile_speedup"] == 2
    assert result["speedup"] == 4 and result["cudnn_benchmark"] is True
    assert set(result["warmup_s"]) == {"naive", "uncompiled", "fast"}
    assert {flag for _, flag in flags_seen} == {True}  # one flag for all three loops
    assert {name for name, _ in flags_seen} == {"naive", "fast", "compiled"}
    assert torch.backends.cudnn.benchmark is False  # restored
    table = format_table(result)
    assert "compiled" in table and "of which torch.compile 2.00x" in table
    off = benchmark(device="cpu", batch_size=8, steps=2, warmup=0, rounds=2, amp=False,
                    cudnn_benchmark=False)  # fmt: skip
    assert off["cudnn_benchmark"] is False and "compile_speedup" not in off
    assert {flag for _, flag in flags_seen[-4:]} == {False}
