"""Train ``resnet_cifar`` with He et al.'s CIFAR-10 recipe, on one device or several.

    python -m resnet_course.train_cifar --depth 20 --data-root ~/data --download
    torchrun --nproc_per_node=4 -m resnet_course.train_cifar --depth 110 --data-root ~/data
    python -m resnet_course.train_cifar --data digits --iterations 2000     # offline, small

The recipe (He et al. 2016, section 4.2): SGD with momentum 0.9, weight decay 1e-4, batch 128,
lr 0.1 divided by 10 at 32k and 48k iterations, stop at 64k; 4-pixel padding, random 32x32 crops
and horizontal flips for training; for ResNet-110, lr 0.01 for the first ~400 iterations
(``--warmup-iterations 400``). Milestones default to 1/2 and 3/4 of ``--iterations``.

Under ``torchrun`` each process trains a DistributedDataParallel replica on its own shard of every
epoch (a DistributedSampler); ``--batch-size`` stays the *global* batch, split across processes,
so the recipe (and its lr) is unchanged. NCCL connects GPUs, gloo CPUs.

The data set lives on the device; batches are indexed from it. Checkpoints (every
``--checkpoint-every`` steps and at the end) store the configuration; ``--resume`` continues from
one and gives the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from resnet_course.checkpoint import (
    check_config,
    load_checkpoint,
    restore,
    save_checkpoint,
    state_hash,
    unwrap,
)
from resnet_course.data import cifar10, digits, random_crop_flip
from resnet_course.device import bf16_is_fast
from resnet_course.models import resnet_cifar
from resnet_course.train import evaluate, make_optimizer, set_seed, train_one_epoch

# Settings that define the experiment: a resumed run must use the same ones.
RUN_KEYS = (
    "data", "image_size", "depth", "shortcut", "batch_size", "lr", "momentum", "weight_decay",
    "milestones", "gamma", "warmup_iterations", "warmup_lr", "augment", "seed",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Settings: a TrainConfig, in code or from the command line
# ----------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """One training run's settings; the defaults are He et al.'s CIFAR-10 recipe.

    The command line fills one (``parse_args``); ``TrainConfig(iterations=2000)`` builds one in
    code. ``__post_init__`` checks the settings and fills the defaults that depend on others.
    """

    data: str = "cifar10"  # or "digits": offline, small
    data_root: str = "data"
    download: bool = False
    image_size: int = 32  # digits only
    depth: int = 20
    shortcut: str = "A"
    batch_size: int = 128  # global, over all processes
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    iterations: int = 64_000
    milestones: list[int] | None = None  # default: 1/2 and 3/4 of iterations
    gamma: float = 0.1
    warmup_iterations: int = 0
    warmup_lr: float = 0.01
    augment: str = "auto"  # "on", "off"; auto: on for cifar10, off for digits
    seed: int = 0
    device: str | None = None  # None: CUDA if available, else CPU
    amp: str = "auto"  # "on", "off"; auto: where the hardware has native bf16
    channels_last: bool = True
    compile: bool = False
    eval_every: int = 2000
    checkpoint: Path | None = None  # default: checkpoints/resnet<depth>-<data>.pt
    checkpoint_every: int = 1000
    resume: bool = False
    stop_after: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        positive = ["batch_size", "iterations", "eval_every", "checkpoint_every"]
        for name in positive + (["stop_after"] if self.stop_after is not None else []):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1; got {value}")
        if self.milestones is None:
            # 1/2 and 3/4 of the run (32k and 48k of 64k); fewer for runs of a few steps
            halves = {self.iterations // 2, self.iterations * 3 // 4}
            self.milestones = sorted(m for m in halves if m >= 1)
        ms = list(self.milestones)
        if sorted(set(ms)) != ms or min(ms, default=1) < 1:
            raise ValueError(f"--milestones must be increasing positive steps; got {ms}")
        self.milestones = ms
        if self.augment == "auto":
            self.augment = "on" if self.data == "cifar10" else "off"
        if self.checkpoint is None:
            name = f"resnet{self.depth}-{self.data}.pt"
            self.checkpoint = Path("checkpoints") / name
        self.checkpoint = Path(self.checkpoint)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(
        prog="python -m resnet_course.train_cifar",
        description="Train a CIFAR ResNet with He et al.'s recipe (single device or torchrun).",
    )
    p.add_argument("--data", choices=["cifar10", "digits"], default="cifar10")
    p.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    p.add_argument("--image-size", type=int, default=32, help="digits only: 8, 16 or 32 pixels")
    p.add_argument("--depth", type=int, default=20, help="6n+2: 20, 32, 44, 56, 110")
    p.add_argument("--shortcut", choices=["A", "B", "C"], default="A")
    p.add_argument("--batch-size", type=int, default=128, help="global, over all processes")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--iterations", type=int, default=64_000, help="optimizer steps in all")
    p.add_argument(
        "--milestones",
        type=int,
        nargs="*",
        default=None,
        help="steps after which lr is multiplied by --gamma (default: 1/2, 3/4 of "
        "--iterations, i.e. 32k and 48k of 64k)",
    )
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument(
        "--warmup-iterations",
        type=int,
        default=0,
        help="steps at --warmup-lr first (the paper uses 400 for ResNet-110)",
    )
    p.add_argument("--warmup-lr", type=float, default=0.01)
    p.add_argument(
        "--augment",
        choices=["auto", "on", "off"],
        default="auto",
        help="pad-crop-flip augmentation (auto: on for cifar10, off for digits)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=None,
        help="default: CUDA if available, else CPU",
    )
    p.add_argument(
        "--amp",
        choices=["auto", "on", "off"],
        default="auto",
        help="bf16 autocast (auto: where the hardware has native bf16)",
    )
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--eval-every", type=int, default=2000, help="steps between evaluations")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint file (default: checkpoints/resnet<depth>-<data>.pt)",
    )
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop after this many steps in this session (a checkpoint is saved), "
        "e.g. to fit a job time limit; continue later with --resume",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return TrainConfig(**vars(p.parse_args(argv)))


# ----------------------------------------------------------------------------------------------
# Processes and devices
# ----------------------------------------------------------------------------------------------
def setup_distributed(device_arg: str | None) -> tuple[int, int, torch.device]:
    """(rank, world_size, device). Under torchrun (``WORLD_SIZE`` set) joins
    the process group: NCCL with one GPU per process, gloo on CPUs."""
    if device_arg is None:
        use_cuda = torch.cuda.is_available()
    else:
        use_cuda = device_arg == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for; PyTorch sees no CUDA GPU")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, torch.device("cuda" if use_cuda else "cpu")
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            gpus = torch.cuda.device_count()
            raise ValueError(f"{world_size} processes per node, {gpus} GPUs")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), world_size, device


def sync_buffers(model: nn.Module, world_size: int) -> None:
    """Give every rank rank 0's BatchNorm running statistics.

    DDP broadcasts buffers from rank 0 at the start of each forward pass,
    but the forward pass then updates each rank's running statistics with
    its own batch; without this, checkpoints and evaluations would depend
    on which rank made them."""
    if world_size > 1:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


# ----------------------------------------------------------------------------------------------
# Data, resident on the device
# ----------------------------------------------------------------------------------------------
def load_data(config: TrainConfig, device: torch.device):
    """X_train, y_train, X_val, y_val on ``device``; X standardized (N, 3, H, W) float32."""
    if config.data == "cifar10":
        try:
            X_train, y_train = cifar10(config.data_root, train=True, download=config.download)
            X_val, y_val = cifar10(config.data_root, train=False, download=config.download)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err}\nOn the command line: add --download (about 163 MB, once), point "
                f"--data-root at the folder holding cifar-10-batches-py, or train offline "
                f"with --data digits."
            ) from err
        # per-channel statistics of the training images: (1, 3, 1, 1)
        mean = X_train.mean(dim=(0, 2, 3), keepdim=True)
        std = X_train.std(dim=(0, 2, 3), keepdim=True)
        X_train, X_val = (X_train - mean) / std, (X_val - mean) / std
    else:
        X_train, y_train, X_val, y_val = digits(
            size=config.image_size, channels=3, seed=config.seed
        )
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    return (
        X_train.to(device, memory_format=fmt), y_train.to(device),
        X_val.to(device, memory_format=fmt), y_val.to(device),
    )  # fmt: skip


class ShardedBatches:
    """This rank's batches, step by step.

    Epoch ``e`` is a DistributedSampler's shuffle (seeded with the run's
    seed and ``e``), cut into batches of ``batch_size`` (the last partial
    batch is dropped). Step ``s`` always gets the same examples, so a
    resumed run sees the same data."""

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        augment: bool,
    ):
        self.X, self.y, self.augment, self.seed = X, y, augment, seed
        self.rank, self.world_size = rank, world_size
        self.batch_size = batch_size  # per rank
        # a range is all a sampler needs from a data set: its length
        self.sampler = DistributedSampler(
            range(len(X)),
            world_size,
            rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.steps_per_epoch = len(self.sampler) // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch of {batch_size} per process > "
                f"{len(self.sampler)} examples"
            )
        self._epoch, self._order = None, None

    def _indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch = epoch
            self._order = torch.tensor(list(self.sampler), device=self.X.device)
        return self._order[i * self.batch_size : (i + 1) * self.batch_size]

    def batches(
        self, start: int, stop: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches for steps ``start .. stop-1``: (B, 3, H, W), (B,)."""
        for step in range(start, stop):
            idx = self._indices(step)
            X, y = self.X[idx], self.y[idx]
            if self.augment:
                # seeded by (seed, step, rank): the same crops and flips
                # after a resume
                seed = (self.seed * 1_000_003 + step) * 4096 + self.rank
                generator = torch.Generator().manual_seed(seed % 2**63)
                X = random_crop_flip(X, generator=generator)
            yield X, y


# ----------------------------------------------------------------------------------------------
# Schedule and loop
# ----------------------------------------------------------------------------------------------
def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate for optimizer step ``step`` (0-based): warm-up, then the base lr
    multiplied by ``gamma`` once for every milestone already passed."""
    if step < config.warmup_iterations:
        return config.warmup_lr
    return config.lr * config.gamma ** sum(step >= m for m in config.milestones)


def next_stop(step: int, end: int, config: TrainConfig) -> int:
    """The next step at which something happens: lr change, evaluation, checkpoint or the end."""
    events = [end, (step // config.eval_every + 1) * config.eval_every]
    events.append((step // config.checkpoint_every + 1) * config.checkpoint_every)
    events += [m for m in [*config.milestones, config.warmup_iterations] if m > step]
    return min(events)


def counted(batches: Iterator, bar: tqdm) -> Iterator:
    """Pass batches through, advancing the progress bar by one per batch."""
    for batch in batches:
        yield batch
        bar.update(1)


def mean_over_ranks(value: float, world_size: int, device: torch.device) -> float:
    if world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / world_size


def train(config: TrainConfig) -> dict:
    """Run (or resume) one training run; return this rank's summary."""
    rank, world_size, device = setup_distributed(config.device)
    if config.batch_size % world_size:
        raise ValueError(f"--batch-size {config.batch_size} is not divisible by {world_size} ranks")
    amp = bf16_is_fast(device) if config.amp == "auto" else config.amp == "on"
    # what the checkpoint records: plain values (a Path as its str)
    settings = {k: str(v) if isinstance(v, Path) else v
                for k, v in dataclasses.asdict(config).items()}  # fmt: skip

    set_seed(config.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    X_train, y_train, X_val, y_val = load_data(config, device)
    model = resnet_cifar(config.depth, num_classes=10, shortcut=config.shortcut).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, "sgd", config.lr, config.momentum, config.weight_decay)

    step, history = 0, {"step": [], "train_loss": [], "val_error": []}
    if config.resume:
        state = load_checkpoint(config.checkpoint, map_location=device)
        check_config(state["config"], settings, RUN_KEYS)
        step = restore(state, model, optimizer)
        history = {k: list(v) for k, v in state["history"].items()} or history

    net = model
    if world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    net = torch.compile(net) if config.compile else net
    data = ShardedBatches(
        X_train, y_train, config.batch_size // world_size, rank, world_size, config.seed,
        augment=config.augment == "on",
    )  # fmt: skip
    val = [(X_val[i : i + 1000], y_val[i : i + 1000]) for i in range(0, len(X_val), 1000)]

    end = config.iterations
    if config.stop_after is not None:  # a time-limited session: stop early, resume later
        end = min(end, step + config.stop_after)
    bar = tqdm(total=config.iterations, initial=step, desc=f"resnet{config.depth}", unit="step",
               disable=not config.progress or rank != 0)  # fmt: skip
    while step < end:
        stop = next_stop(step, end, config)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        loss = train_one_epoch(
            net, counted(data.batches(step, stop), bar), optimizer, device,
            amp=amp, channels_last=config.channels_last,
        )  # fmt: skip
        loss = mean_over_ranks(loss, world_size, device)
        step = stop
        if step % config.eval_every == 0 or step == end:
            sync_buffers(model, world_size)
            val_error = 1.0 - evaluate(model, val, device, amp, config.channels_last)
            history["step"].append(step)
            history["train_loss"].append(loss)
            history["val_error"].append(val_error)
            lr = lr_at(step - 1, config)
            bar.set_postfix(loss=f"{loss:.3f}", val_err=f"{val_error:.4f}", lr=lr)
        if step % config.checkpoint_every == 0 or step == end:
            sync_buffers(model, world_size)
            if rank == 0:
                save_checkpoint(config.checkpoint, model, optimizer, step, settings, history)
    bar.close()

    sync_buffers(model, world_size)
    summary = {
        "rank": rank,
        "world_size": world_size,
        "step": step,
        "val_error": history["val_error"][-1] if history["val_error"] else None,
        "state_sha256": state_hash(model),
        "checkpoint": str(config.checkpoint),
    }
    if world_size > 1:
        dist.barrier()  # rank 0 has finished writing the checkpoint
        dist.destroy_process_group()
    return summary


def main(argv: list[str] | None = None) -> dict:
    summary = train(parse_args(argv))
    print(json.dumps(summary), flush=True)  # one line per rank; equal hashes = equal replicas
    return summary


if __name__ == "__main__":
    main()
