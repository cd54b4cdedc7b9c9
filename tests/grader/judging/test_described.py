"""grader/judging/described.py: the grader's own objects in a call to the subject (loaders,
optimizers, modules with the grader's hooks) sent as descriptions, and the subject's answer
applied back. No subject here: its answers are written by hand as it would send them; the
round trips through a real subject are in test_verdict_wire.py and test_verdict_ex5.py."""

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from grader.inside import instruments, wire
from grader.judging.described import Described


def loader(**kwargs) -> DataLoader:
    return DataLoader(TensorDataset(torch.arange(6.0), torch.arange(6)), batch_size=2, **kwargs)


def test_loader_description():
    blobs: list[bytes] = []
    node = Described().loader(loader(), blobs)
    assert (node["batch_size"], node["shuffle"], node["seed"], node["host"]) == (2, False,
                                                                                 None, False)
    tensors = wire.decode(node["tensors"], blobs)
    assert torch.equal(tensors[0], torch.arange(6.0)) and torch.equal(tensors[1], torch.arange(6))


def test_a_shuffled_loaders_order_is_drawn_here_from_its_generator():
    seeds = [Described().loader(loader(shuffle=True, generator=torch.Generator().manual_seed(3)),
                                [])["seed"] for _ in range(2)]
    assert seeds[0] == seeds[1] and isinstance(seeds[0], int)


def test_host_batches_are_noted():
    described = Described()
    node = described.loader(loader(collate_fn=instruments.host_collate), [])
    assert node["host"] and described.host


class Squares(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return i * i


@pytest.mark.parametrize("make, why", [
    (lambda: DataLoader(Squares()), "TensorDataset"),
    (lambda: loader(collate_fn=lambda items: items), "collate_fn"),
    (lambda: DataLoader(TensorDataset(torch.ones(4)), sampler=[0, 1]), "list"),
])
def test_loaders_that_cannot_be_sent(make, why):
    with pytest.raises(TypeError, match=why):
        Described().loader(make(), [])


def test_optimizer_description_and_write_back():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    described = Described()
    described.local.append(model)
    blobs: list[bytes] = []
    node = described.optimizer(opt, blobs)
    assert node["kind"] == "SGD"
    assert node["groups"][0]["params"] == [[0, "weight"], [0, "bias"]]
    assert wire.decode(node["groups"][0]["hyper"], blobs)["lr"] == 0.1
    # the subject's answer: a schedule changed lr, momentum buffers exist now
    back_blobs: list[bytes] = []
    buffer = torch.full((1, 2), 7.0)
    back = {"groups": [wire.encode({"lr": 0.01, "momentum": 0.9}, back_blobs)],
            "state": [[[0, "weight"], wire.encode({"momentum_buffer": buffer}, back_blobs)]]}
    described.apply({"optimizers": [back]}, back_blobs)
    assert opt.param_groups[0]["lr"] == 0.01
    assert torch.equal(opt.state[model.weight]["momentum_buffer"], buffer)
    assert model.bias not in opt.state


def test_optimizers_that_cannot_be_sent():
    model = torch.nn.Linear(2, 1)

    class MySGD(torch.optim.SGD):
        pass

    with pytest.raises(TypeError, match="MySGD optimizer cannot be sent"):
        Described().optimizer(MySGD(model.parameters(), lr=0.1), [])
    with pytest.raises(TypeError, match="passed before it"):  # its model is not in the call
        Described().optimizer(torch.optim.SGD(model.parameters(), lr=0.1), [])


def test_hooks_are_replayed_in_order_under_the_subjects_modes():
    model = torch.nn.Linear(2, 1)
    seen = []
    model.register_forward_pre_hook(
        lambda m, inputs: seen.append(("pre", m.training, torch.is_grad_enabled())))
    model.register_forward_hook(lambda m, inputs, out: seen.append(("post", float(out.sum()))))
    described = Described()
    node = described.module_node(model)
    assert node["trace"] == 0 and node["events"] == ["pre", "post"]
    assert described.module_node(model)["trace"] == 0  # one trace per module
    assert Described().module_node(torch.nn.Linear(2, 1)) == {}  # no hooks: nothing extra
    blobs: list[bytes] = []
    x, out = torch.ones(1, 2), torch.tensor([[5.0]])
    record = wire.encode([[0, "pre", [x], None, False, False],
                          [0, "post", [x], out, False, False]], blobs)
    described.apply({"local_trace": record}, blobs)
    assert seen == [("pre", False, False), ("post", 5.0)]
    assert model.training  # its own mode again


def test_an_answer_that_removed_the_hooks_fails():
    with pytest.raises(AssertionError, match="removed hooks"):
        Described().apply({"unwatched": True}, [])


def test_work_must_be_reported_when_counted():
    described = Described()
    described.work = True
    with pytest.raises(AssertionError, match="did not report the work"):
        described.apply({}, [])
