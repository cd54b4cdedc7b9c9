"""Tests for resnet_course.train_cifar and resnet_course.checkpoint: the paper's recipe, the
sharded batches, checkpoint resume, and a two-process torchrun run with gloo."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_course.checkpoint import load_checkpoint, save_checkpoint, state_hash
from resnet_course.models import resnet_cifar
from resnet_course.train import set_seed
from resnet_course.train_cifar import (
    ShardedBatches,
    TrainConfig,
    lr_at,
    main,
    next_stop,
    parse_args,
)

# a tiny run: ResNet-8 on 8x8 digits, a few steps
TINY = [
    "--data", "digits", "--image-size", "8", "--depth", "8", "--batch-size", "32",
    "--iterations", "6", "--eval-every", "3", "--checkpoint-every", "2", "--no-progress",
]  # fmt: skip


def test_defaults_are_the_papers_recipe():
    args = parse_args([])
    assert (args.data, args.depth, args.batch_size) == ("cifar10", 20, 128)
    assert (args.lr, args.momentum, args.weight_decay) == (0.1, 0.9, 1e-4)
    assert args.iterations == 64_000 and args.milestones == [32_000, 48_000]
    assert args.augment == "on"


def test_lr_schedule_divides_by_ten_at_the_milestones():
    args = parse_args([])
    lrs = [lr_at(s, args) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    warm = parse_args(["--warmup-iterations", "400"])
    assert lr_at(399, warm) == 0.01 and lr_at(400, warm) == 0.1


def test_command_line_defaults_are_the_config_defaults():
    assert parse_args([]) == TrainConfig()
    argv = ["--data", "digits", "--iterations", "8", "--milestones", "2", "6", "--lr", "0.05"]
    assert parse_args(argv) == TrainConfig(data="digits", iterations=8, milestones=[2, 6], lr=0.05)


def test_config_fills_the_defaults_that_depend_on_other_settings():
    small = TrainConfig(data="digits", depth=8, iterations=6)
    assert small.milestones == [3, 4] and small.augment == "off"
    assert small.checkpoint == Path("checkpoints/resnet8-digits.pt")
    assert TrainConfig(iterations=1).milestones == []  # no step left to divide at


def test_lr_schedule_is_a_function_of_the_config():
    config = TrainConfig(lr=0.2, gamma=0.5, iterations=100, milestones=[10, 20],
                         warmup_iterations=3, warmup_lr=0.02)  # fmt: skip
    lrs = [lr_at(s, config) for s in (0, 2, 3, 9, 10, 19, 20, 99)]
    assert lrs == pytest.approx([0.02, 0.02, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05])
    # the loop stops at every lr change, evaluation, checkpoint and at the end
    config = TrainConfig(iterations=100, milestones=[10, 20], warmup_iterations=3,
                         eval_every=15, checkpoint_every=25)  # fmt: skip
    stops, step = [], 0
    while step < 100:
        step = next_stop(step, 100, config)
        stops.append(step)
    assert stops == [3, 10, 15, 20, 25, 30, 45, 50, 60, 75, 90, 100]


@pytest.mark.parametrize(
    "argv, kwargs, message",
    [
        (["--batch-size", "0"], {"batch_size": 0}, "--batch-size must be >= 1"),
        (["--stop-after", "0"], {"stop_after": 0}, "--stop-after must be >= 1"),
        (["--milestones", "30", "10"], {"milestones": [30, 10]}, "--milestones must be increasing"),
        (["--milestones", "0", "10"], {"milestones": [0, 10]}, "--milestones must be increasing"),
    ],
)
def test_bad_settings_raise_from_the_command_line_and_from_code(argv, kwargs, message):
    with pytest.raises(ValueError, match=message):
        parse_args(argv)
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_missing_cifar10_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        main(["--data-root", str(tmp_path), "--iterations", "1", "--no-progress"])
    assert not any(tmp_path.iterdir())  # nothing was downloaded


def test_ranks_get_disjoint_shards_and_a_step_always_gets_the_same_batch():
    X, y = torch.zeros(20, 1, 2, 2), torch.arange(20)
    shards = [ShardedBatches(X, y, 5, rank, 2, seed=3, augment=False) for rank in (0, 1)]
    assert shards[0].steps_per_epoch == 2  # 10 examples per rank, batches of 5
    epoch0 = [torch.cat([b for _, b in s.batches(0, 2)]) for s in shards]
    assert sorted(torch.cat(epoch0).tolist()) == list(range(20))  # together: everything once
    again = ShardedBatches(X, y, 5, 0, 2, seed=3, augment=False)
    ((_, y1),) = list(again.batches(1, 2))  # step 1 on its own, as after a resume
    assert torch.equal(y1, epoch0[0][5:])
    ((_, y_next),) = list(again.batches(2, 3))  # epoch 1 is another shuffle
    assert not torch.equal(y_next, epoch0[0][:5])



def test_augmented_batches_depend_on_seed_step_and_rank_only():
    # 20 distinct images: the crops and flips of a step must be the same after a resume
    X = torch.arange(20 * 3 * 8 * 8, dtype=torch.float32).view(20, 3, 8, 8)
    y = torch.arange(20)

    def batch(step: int, rank: int = 0, seed: int = 3) -> torch.Tensor:
        shards = ShardedBatches(X, y, 5, rank, 2, seed=seed, augment=True)
        ((Xb, _),) = list(shards.batches(step, step + 1))
        return Xb

    assert torch.equal(batch(1), batch(1))  # a fresh instance, as after a resume
    plain = ShardedBatches(X, y, 5, 0, 2, seed=3, augment=False)
    ((unaugmented, _),) = list(plain.batches(1, 2))
    assert not torch.equal(batch(1), unaugmented)  # augmentation did something
    assert not torch.equal(batch(1), batch(1, seed=4))

def test_checkpoint_stores_config_and_round_trips(tmp_path):
    model = resnet_cifar(8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = save_checkpoint(tmp_path / "c.pt", model, optimizer, 7, {"depth": 8}, {"loss": [1.0]})
    state = load_checkpoint(path)
    assert state["step"] == 7 and state["config"] == {"depth": 8}
    other = resnet_cifar(8)
    other.load_state_dict(state["model"])
    assert state_hash(other) == state_hash(model)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(Exception):  # noqa: B017 - torch's unpickling error type varies
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(tmp_path / "other.pt")


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    whole = main([*TINY, "--checkpoint", str(tmp_path / "whole.pt")])
    first = main([*TINY, "--checkpoint", str(tmp_path / "split.pt"), "--stop-after", "3"])
    assert first["step"] == 3 and first["state_sha256"] != whole["state_sha256"]
    rest = main([*TINY, "--checkpoint", str(tmp_path / "split.pt"), "--resume"])
    assert rest["step"] == whole["step"] == 6
    assert rest["state_sha256"] == whole["state_sha256"]
    saved = load_checkpoint(tmp_path / "split.pt")
    assert saved["step"] == 6 and saved["config"]["depth"] == 8
    assert saved["history"]["step"] == [3, 6]


def test_resume_refuses_other_settings(tmp_path):
    ckpt = str(tmp_path / "c.pt")
    main([*TINY, "--checkpoint", ckpt, "--stop-after", "2"])
    with pytest.raises(ValueError, match="lr"):
        main([*TINY, "--checkpoint", ckpt, "--resume", "--lr", "0.05"])


@pytest.mark.slow
def test_torchrun_two_processes_end_with_identical_weights(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    ckpt = tmp_path / "ddp.pt"
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "resnet_course.train_cifar",
        *TINY,
        "--device",
        "cpu",
        "--checkpoint",
        str(ckpt),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [json.loads(s) for s in re.findall(r'\{"rank".*?\}', proc.stdout)]
    assert sorted(s["rank"] for s in summaries) == [0, 1]
    assert all(s["world_size"] == 2 and s["step"] == 6 for s in summaries)
    assert summaries[0]["state_sha256"] == summaries[1]["state_sha256"]
    # the replicas trained (they are not just two copies of the initial weights)
    set_seed(0)
    assert summaries[0]["state_sha256"] != state_hash(resnet_cifar(8))
    assert load_checkpoint(ckpt)["step"] == 6
