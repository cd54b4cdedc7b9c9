"""resnet_course/checkpoint.py: checkpoints that say how they were made, round trip a model
and its optimizer bit for bit, refuse other files and other settings. Resuming a whole CIFAR
run is in test_train_cifar.py."""

import pytest
import torch
from torch import nn

from resnet_course.checkpoint import (
    FORMAT_VERSION,
    check_config,
    load_checkpoint,
    restore,
    save_checkpoint,
    state_hash,
    unwrap,
)


def trained(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(8, 3)).pow(2).mean().backward()
        optimizer.step()
    return model, optimizer


def test_round_trip(tmp_path):
    model, optimizer = trained()
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pt", model, optimizer, step=2,
                           config={"depth": 3, "lr": 0.1}, history={"loss": [1.0, 0.5]})
    assert path.is_file() and not path.with_name("ckpt.pt.tmp").exists()
    state = load_checkpoint(path)
    assert (state["format"], state["step"], state["config"], state["history"]) == (
        FORMAT_VERSION, 2, {"depth": 3, "lr": 0.1}, {"loss": [1.0, 0.5]})
    fresh, fresh_optimizer = trained(seed=1)
    assert state_hash(fresh) != state_hash(model)
    assert restore(state, fresh, fresh_optimizer) == 2
    assert state_hash(fresh) == state_hash(model)  # weights and BatchNorm's running stats
    buffers = [fresh_optimizer.state[p]["momentum_buffer"] for p in fresh.parameters()]
    expected = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(buffers, expected, strict=True))


def test_a_negative_step_is_refused(tmp_path):
    model, optimizer = trained()
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path / "c.pt", model, optimizer, step=-1, config={})


def test_load_refuses_what_is_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(tmp_path / "other.pt")
    model, optimizer = trained()
    save_checkpoint(tmp_path / "c.pt", model, optimizer, step=0, config={})
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    torch.save({**state, "format": FORMAT_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="checkpoint format"):
        load_checkpoint(tmp_path / "future.pt")


def test_check_config_names_every_difference():
    check_config({"depth": 3, "lr": 0.1, "seed": 1}, {"depth": 3, "lr": 0.1, "seed": 2},
                 ["depth", "lr"])  # seed not compared: fine
    with pytest.raises(ValueError, match="depth: checkpoint has 3, this run has 5; lr: "):
        check_config({"depth": 3, "lr": 0.1}, {"depth": 5, "lr": 0.2}, ["depth", "lr"])


def test_state_hash_sees_one_changed_value_and_unwrap():
    model, _ = trained()
    before = state_hash(model)
    with torch.no_grad():
        model[0].bias[0] += 1e-6
    assert state_hash(model) != before

    class Compiled(nn.Module):  # what torch.compile's OptimizedModule looks like
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    assert unwrap(Compiled(Compiled(model))) is model
    assert state_hash(Compiled(model)) == state_hash(model)
