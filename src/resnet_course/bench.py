"""Naive against fast training throughput, measured in one run: ``python -m resnet_course.bench``.

Both loops train the same ``resnet_cifar`` network with the same optimizer (SGD, momentum 0.9,
weight decay 1e-4) and the same batch size, through the library's ``train_one_epoch``. They
differ only in how they feed it:

* **naive** - eager fp32, NCHW, batches from a ``DataLoader`` over CPU tensors (each batch is
  collated example by example on the CPU, then copied to the device);
* **fast** - channels_last, bfloat16 autocast where the hardware computes in bf16 natively,
  the whole data set resident on the device (a batch is one indexing operation);
* **compiled** (only with ``--compile``) - the fast loop through ``torch.compile``, timed in the
  same rounds as the other two, so ``compile_speedup`` (compiled over fast) is compiling's own
  share of the speed-up, measured under the same load.

``torch.backends.cudnn.benchmark`` (cuDNN tries its convolution algorithms on the first batch of
each shape and keeps the fastest) is the same in every loop, ``--cudnn-benchmark on`` by default:
it is a global flag, and a loop that had it while the other did not would credit the data feed
or the layout with cuDNN's choice. On Ampere and later GPUs PyTorch runs fp32 convolutions as
TF32 on the tensor cores by default (``torch.backends.cudnn.allow_tf32``), so the naive loop's
"fp32" is already tensor-core arithmetic there; bf16 then gains at most about 2x at peak, not the
16x of bf16 over true fp32 arithmetic. The JSON records the flag.

The images are random CIFAR-shaped tensors (nothing is downloaded): throughput does not depend on
the pixel values. After warm-up the two loops run in alternating rounds, so a machine that gets
busier or quieter during the run slows both alike; the reported throughput is
``batch_size / median seconds per step`` over the rounds. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import nn

from resnet_course.data import make_loader
from resnet_course.device import bf16_is_fast, device_name, pick_device, synchronize
from resnet_course.models import resnet_cifar
from resnet_course.train import make_optimizer, set_seed, train_one_epoch
from resnet_course.validate import check_int

MODELS = {"resnet20": 20, "resnet32": 32, "resnet56": 56, "resnet110": 110}


# ----------------------------------------------------------------------------------------------
# The two ways of feeding the same training loop
# ----------------------------------------------------------------------------------------------
def cycle_loader(loader: torch.utils.data.DataLoader) -> Iterator:
    """Batches from ``loader`` forever (a new shuffle each pass)."""
    while True:
        yield from loader


class ResidentBatches:
    """Random batches of a data set that lives on the device, by indexing.

    A DataLoader over tensors picks ``batch_size`` examples one by one and
    stacks them (in Python, on the CPU); here one indexing operation on the
    device does the same work. Each iteration yields ``num_batches``
    batches, shuffled without replacement within a pass.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        num_batches: int,
        channels_last: bool = False,
        seed: int = 0,
    ):
        if len(X) < batch_size:
            raise ValueError(
                f"need at least batch_size={batch_size} examples; got {len(X)}"
            )
        # (N, C, H, W) stored NHWC once, so no batch needs converting later
        if channels_last:
            X = X.contiguous(memory_format=torch.channels_last)
        self.X = X
        self.y = y
        self.batch_size = batch_size
        self.num_batches = num_batches
        self.generator = torch.Generator(device=X.device).manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.int64, device=X.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.num_batches):
            if len(self._order) < self.batch_size:
                # start a new pass over the data
                self._order = torch.randperm(
                    len(self.X), device=self.X.device, generator=self.generator
                )
            idx = self._order[: self.batch_size]
            self._order = self._order[self.batch_size :]
            yield self.X[idx], self.y[idx]  # (B, C, H, W), (B,)


def synthetic_cifar(num_images: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random CIFAR-10-shaped data: X (N, 3, 32, 32) in [0, 1), y (N,) in 0..9."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(num_images, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (num_images,), generator=generator)
    return X, y


def naive_trainer(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> Callable[[int], float]:
    """``run(num_steps)`` trains with the naive loop; returns its seconds."""
    model = model.to(device)
    optimizer = make_optimizer(
        model, "sgd", lr=0.1, momentum=0.9, weight_decay=1e-4
    )
    # X, y stay on the CPU
    batches = cycle_loader(make_loader(X, y, batch_size))

    def run(num_steps: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        steps = itertools.islice(batches, num_steps)
        train_one_epoch(model, steps, optimizer, device)
        # train_one_epoch's final .item() waits too; this is explicit
        synchronize(device)
        return time.perf_counter() - start

    return run


def fast_trainer(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    device: torch.device,
    amp: bool,
    compile: bool = False,
) -> Callable[[int], float]:
    """``run(num_steps)`` trains with the fast loop; returns its seconds."""
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(
        model, "sgd", lr=0.1, momentum=0.9, weight_decay=1e-4
    )
    # a compiled model shares the model's parameters
    net = torch.compile(model) if compile else model
    batches = ResidentBatches(
        X.to(device), y.to(device), batch_size, 0, channels_last=True
    )

    def run(num_steps: int) -> float:
        batches.num_batches = num_steps
        synchronize(device)
        start = time.perf_counter()
        train_one_epoch(
            net, batches, optimizer, device, amp=amp, channels_last=True
        )
        synchronize(device)
        return time.perf_counter() - start

    return run


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
def benchmark(
    model: str = "resnet20",
    device: str | torch.device | None = None,
    batch_size: int = 128,
    steps: int = 20,
    warmup: int = 3,
    rounds: int = 5,
    amp: bool | None = None,
    compile: bool = False,
    seed: int = 0,
    cudnn_benchmark: bool = True,
) -> dict:
    """Time ``steps`` training steps of each loop (after ``warmup`` steps each), in ``rounds``
    alternating rounds; return the results as a JSON-ready dict. ``amp=None`` uses bf16 autocast
    exactly where ``bf16_is_fast(device)``. ``compile=True`` adds the compiled fast loop as a
    third loop of the same rounds (``fast_img_s`` is then the compiled loop's throughput,
    ``uncompiled_img_s`` the same loop without compiling, ``compile_speedup`` their ratio).
    ``cudnn_benchmark`` holds for every loop; the flag is restored afterwards."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
    for name, value in [("batch_size", batch_size), ("steps", steps), ("rounds", rounds)]:
        check_int(name, value)
    check_int("warmup", warmup, minimum=0)
    if steps < rounds:
        raise ValueError(f"steps ({steps}) must be at least rounds ({rounds})")
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but PyTorch sees no CUDA GPU")
    amp = bf16_is_fast(device) if amp is None else bool(amp)

    set_seed(seed)
    X, y = synthetic_cifar(max(8 * batch_size, 2048), seed)
    base = resnet_cifar(MODELS[model])
    runners = {
        "naive": naive_trainer(copy.deepcopy(base), X, y, batch_size, device),
        "fast": fast_trainer(copy.deepcopy(base), X, y, batch_size, device, amp),
    }
    if compile:
        runners["compiled"] = fast_trainer(
            copy.deepcopy(base), X, y, batch_size, device, amp, compile=True
        )
    previous_flag = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)  # global: one value for every loop
    try:
        step_s, warmup_s = _time_rounds(runners, steps, warmup, rounds)
    finally:
        torch.backends.cudnn.benchmark = previous_flag
    img_s = {name: batch_size / statistics.median(s) for name, s in step_s.items()}
    naive_img_s = img_s["naive"]
    fast_img_s = img_s["compiled" if compile else "fast"]
    compiled = {}
    if compile:
        compiled = {
            "uncompiled_img_s": round(img_s["fast"], 1),
            "compile_speedup": round(img_s["compiled"] / img_s["fast"], 2),
            "uncompiled_round_img_s": [round(batch_size / s, 1) for s in step_s["fast"]],
        }
    fast_steps = step_s["compiled" if compile else "fast"]
    warmup_names = {"naive": "naive", "fast": "fast"}
    if compile:
        warmup_names.update(fast="uncompiled", compiled="fast")
    return {
        "device": device.type,
        "device_name": device_name(device),
        "model": model,
        "batch_size": batch_size,
        "steps": steps,
        "rounds": rounds,
        "fast_settings": {
            "channels_last": True,
            "bf16_autocast": amp,
            "data_on_device": True,
            "compile": compile,
        },
        "cudnn_benchmark": bool(cudnn_benchmark),
        "naive_img_s": round(naive_img_s, 1),
        "fast_img_s": round(fast_img_s, 1),
        "speedup": round(fast_img_s / naive_img_s, 2),
        **compiled,
        "naive_round_img_s": [round(batch_size / s, 1) for s in step_s["naive"]],
        "fast_round_img_s": [round(batch_size / s, 1) for s in fast_steps],
        # "fast" is the loop reported as fast_img_s: with --compile, mostly compiling time
        "warmup_s": {warmup_names[name]: round(s, 2) for name, s in warmup_s.items()},
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _time_rounds(
    runners: dict[str, Callable[[int], float]], steps: int, warmup: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Warm every loop up, then time them in ``rounds`` rounds, the order reversed every round
    so drifts in load hit all alike. Returns ({loop: seconds per step, one per round},
    {loop: warm-up seconds})."""
    warmup_s = {name: run(warmup) if warmup else 0.0 for name, run in runners.items()}
    per_round = [steps // rounds + (r < steps % rounds) for r in range(rounds)]
    step_s: dict[str, list[float]] = {name: [] for name in runners}
    for r, n in enumerate(per_round):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for name in order:
            step_s[name].append(runners[name](n) / n)
    return step_s, warmup_s


def seconds_per_batch(batches: Iterable, num_batches: int, device: torch.device) -> float:
    """Median seconds to get one batch onto ``device`` from ``batches`` (no training)."""
    times, iterator = [], iter(batches)
    for _ in range(num_batches):
        synchronize(device)
        start = time.perf_counter()
        X, y = next(iterator)
        X, y = X.to(device), y.to(device)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def data_feed_seconds(
    batch_size: int, device: torch.device, num_images: int = 4096, num_batches: int = 20
) -> dict[str, float]:
    """Seconds per batch of the two batch sources alone: a DataLoader over CPU tensors (then
    copied to the device) against indexing a device-resident tensor."""
    X, y = synthetic_cifar(num_images)
    loader = cycle_loader(make_loader(X, y, batch_size))
    resident = ResidentBatches(X.to(device), y.to(device), batch_size, num_batches + 1)
    return {
        "dataloader": seconds_per_batch(loader, num_batches, device),
        "resident": seconds_per_batch(resident, num_batches, device),
    }


def batch_size_sweep(
    batch_sizes: Iterable[int],
    model: str = "resnet20",
    device: str | torch.device = "cpu",
    steps: int = 3,
    amp: bool | None = None,
) -> list[tuple[int, float]]:
    """Throughput (images/s) of the fast loop at each batch size: one warm-up step each, then
    ``steps`` rounds that time one step of every batch size in turn (so a change in the
    machine's load hits all sizes alike); the median per size. Returns ``[(batch_size, img_s)]``.
    """
    device = torch.device(device)
    amp = bf16_is_fast(device) if amp is None else amp
    batch_sizes = [check_int("batch_size", b) for b in batch_sizes]
    check_int("steps", steps)
    runners = {}
    previous_flag = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as in benchmark()'s default
    try:
        for batch_size in batch_sizes:
            set_seed(0)
            X, y = synthetic_cifar(2 * batch_size)
            runners[batch_size] = fast_trainer(
                resnet_cifar(MODELS[model]), X, y, batch_size, device, amp
            )
            runners[batch_size](1)  # warm-up: first-call allocations and kernel choices
        seconds = {b: [] for b in batch_sizes}
        for _ in range(steps):
            for batch_size, run in runners.items():
                seconds[batch_size].append(run(1))
    finally:
        torch.backends.cudnn.benchmark = previous_flag
    return [(b, b / statistics.median(seconds[b])) for b in batch_sizes]


def format_table(result: dict) -> str:
    """The result as a small text table."""
    fast = ", ".join(k for k, v in result["fast_settings"].items() if v) or "nothing"
    rows = [
        ("loop", "img/s", "settings"),
        ("naive", f"{result['naive_img_s']:,.0f}", "fp32, NCHW, DataLoader over CPU tensors"),
        ("fast", f"{result['fast_img_s']:,.0f}", fast),
    ]
    if "compile_speedup" in result:
        rows[2] = ("fast", f"{result['uncompiled_img_s']:,.0f}",
                   fast.replace(", compile", ""))  # fmt: skip
        rows.append(("compiled", f"{result['fast_img_s']:,.0f}", "the fast loop, torch.compile'd"))
    lines = [f"{a:<8} {b:>10}  {c}" for a, b, c in rows]
    title = (
        f"{result['model']} on {result['device_name']}, batch {result['batch_size']}, "
        f"median of {result['rounds']} rounds ({result['steps']} steps per loop)"
    )
    tail = [f"speedup {result['speedup']:.2f}x"]
    if "compile_speedup" in result:
        tail.append(f"of which torch.compile {result['compile_speedup']:.2f}x")
    return "\n".join([title, *lines, *tail])


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m resnet_course.bench",
        description="Training throughput of a naive and a fast loop, measured in one run.",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda", "mps"],
        default=None,
        help="default: CUDA if available, else MPS, else CPU",
    )
    parser.add_argument("--model", choices=list(MODELS), default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per loop first")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    parser.add_argument(
        "--amp",
        choices=["auto", "on", "off"],
        default="auto",
        help="bf16 autocast in the fast loop (auto: where the hardware has bf16)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time the fast loop through torch.compile, in the same rounds",
    )
    parser.add_argument(
        "--cudnn-benchmark",
        choices=["on", "off"],
        default="on",
        help="torch.backends.cudnn.benchmark, the same for every loop (default: on)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(check_int("threads", args.threads))
    amp = {"auto": None, "on": True, "off": False}[args.amp]
    result = benchmark(
        args.model, args.device, args.batch_size, args.steps, args.warmup, args.rounds,
        amp=amp, compile=args.compile, cudnn_benchmark=args.cudnn_benchmark == "on",
    )  # fmt: skip
    print(format_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
