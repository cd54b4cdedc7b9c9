"""The trusted-verdict plumbing without a kernel: the wire format (grader.inside.wire), the subject
process (grader.inside.subject, started here without the sandbox) and the proxies
(grader.judging.proxy). Each module on its own: tests/grader/inside/test_subject.py,
test_wire.py, test_instruments.py, tests/grader/judging/test_proxy.py."""

from __future__ import annotations

import copy
import io
import json
import math
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader.checks import ex5
from grader.checks.common import expect_own_implementation
from grader.inside import instruments, wire
from grader.isolation.limits import Limits
from grader.judging import proxy
from grader.judging.verdict import Subject, helpers_source

# --------------------------------------------------------------------------- wire format


def roundtrip(value):
    blobs: list[bytes] = []
    tree = wire.encode(value, blobs)
    header, out = wire.receive(io.BytesIO(wire.pack({"v": tree}, blobs)))
    return wire.decode(header["v"], out)


@pytest.mark.parametrize("dtype", sorted(wire.DTYPES))
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3, 4)])
def test_tensors_round_trip_bit_exact(dtype, shape):
    t = (torch.randn(shape) * 100).to(wire.DTYPES[dtype])
    back = roundtrip(t)
    assert back.dtype == t.dtype and back.shape == t.shape and torch.equal(back, t)


def test_non_contiguous_and_requires_grad():
    t = torch.randn(4, 5).t().requires_grad_(True)
    back = roundtrip(t)
    assert torch.equal(back, t.detach()) and back.requires_grad


def test_python_values_round_trip():
    value = {"a": (1, 2.5, None, True), "b": [float("inf"), "x"], 3: torch.device("cpu"),
             "dt": torch.float64, "np": np.float32(1.5), "np64": np.float64(0.25)}
    back = roundtrip(value)
    assert back["a"] == (1, 2.5, None, True) and isinstance(back["a"], tuple)
    assert back["b"] == [math.inf, "x"] and back[3] == torch.device("cpu")
    assert back["dt"] is torch.float64
    assert type(back["np"]) is np.float32 and back["np"] == 1.5
    assert isinstance(back["np64"], float)  # np.float64 is a float, as it is in the kernel
    assert isinstance(roundtrip(float("nan")), float)


def test_objects_that_are_not_data_do_not_cross():
    class Anything(float):
        def __eq__(self, other):
            return True

    for value in (Anything(1.0), object(), {1, 2}, lambda: 0):
        with pytest.raises(TypeError):
            wire.encode(value, [])


@pytest.mark.parametrize("header", [
    {"v": {"$T": 0, "dtype": "complex64", "shape": [1]}},  # dtype not on the list
    {"v": {"$T": 0, "dtype": "float32", "shape": [3]}},  # 4 bytes cannot be 3 floats
    {"v": {"$T": 5, "dtype": "float32", "shape": [1]}},  # no such blob
    {"v": {"$T": 0, "dtype": "float32", "shape": [-1]}},
    {"v": [1, 2]},  # untagged list
    {"v": {"$pickle": "..."}},  # unknown tag
])
def test_malformed_values_are_refused(header):
    got, blobs = wire.receive(io.BytesIO(wire.pack(header, [b"\0" * 4])))
    with pytest.raises(wire.WireError):
        wire.decode(got["v"], blobs)


def test_oversized_and_broken_frames_are_refused():
    with pytest.raises(wire.WireError):
        wire.receive(io.BytesIO(struct.pack(">Q", wire.MAX_HEADER_BYTES + 1)))
    text = json.dumps({"sizes": [wire.MAX_MESSAGE_BYTES]}).encode()
    with pytest.raises(wire.WireError):  # refused before reading (or allocating) the blob
        wire.receive(io.BytesIO(struct.pack(">Q", len(text)) + text))
    with pytest.raises(wire.WireError):
        wire.receive(io.BytesIO(struct.pack(">Q", 3) + b"{{{"))
    with pytest.raises(EOFError):
        wire.receive(io.BytesIO(struct.pack(">Q", 100) + b"{}"))


def test_shared_layers_stay_shared():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), nn.Sequential(layer))
    blobs: list[bytes] = []
    tree = wire.decode(wire.encode(wire.describe(model, lambda m: None), blobs), blobs)
    twin = wire.build(tree, lambda node: (
        wire.empty_module(wire.STANDARD_MODULES[node["std"]]), True))
    assert twin[2][0] is twin[0] and len(list(twin.modules())) == 4


def test_module_trees_rebuild_torch_layers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same", bias=False), nn.BatchNorm2d(4),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 25, 2))
    model[1].running_mean.normal_()
    blobs: list[bytes] = []
    tree = wire.encode(wire.describe(model, lambda m: None), blobs)
    header, out = wire.receive(io.BytesIO(wire.pack({"t": tree}, blobs)))
    twin = wire.build(wire.decode(header["t"], out),
                      lambda node: (wire.empty_module(wire.STANDARD_MODULES[node["std"]]), True))
    x = torch.randn(2, 3, 5, 5)
    model.eval()
    twin.eval()
    assert torch.equal(twin(x), model(x))
    assert list(twin.state_dict()) == list(model.state_dict())


def test_loss_modules_from_the_list_cross_as_data():
    """A loss a request passes is one of a fixed list of torch's own (rebuilt from its
    attributes, e.g. label smoothing), never code."""
    loss = nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")
    blobs: list[bytes] = []
    tree = wire.decode(wire.encode(wire.describe(loss, lambda m: None), blobs), blobs)
    twin = wire.build(tree, lambda node: (
        wire.empty_module(wire.STANDARD_MODULES[node["std"]]), True))
    logits, y = torch.randn(5, 3), torch.randint(0, 3, (5,))
    assert type(twin) is nn.CrossEntropyLoss and torch.equal(twin(logits, y), loss(logits, y))


# --------------------------------------------------------------------------- a live subject

STUDENT = '''
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

print("noise on stdout", flush=True)  # must not reach the channel
os.write(1, b"raw noise on fd 1")


class Block(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):
        return F.relu(self.linear2(F.relu(self.linear1(a))) + a)


class InPlace(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, a):
        a += self.scale  # changes its input in place
        return 2 * a


def zero_(block):
    nn.init.zeros_(block.linear2.weight)
    nn.init.zeros_(block.linear2.bias)
    return block


def picky(n):
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [n, float(n), (n,)]


def bump_(x):
    x += 1
    return None


def is_training(model):
    model.eval()
    return [m.training for m in model.modules()]


class Anything:
    def __eq__(self, other):
        return True


def anything():
    return Anything()


def crash():
    os._exit(3)


def hang():
    while True:
        pass


def uses_library():
    from resnet_course import models
    return models


def leave_hook(model):
    model[0].register_forward_hook(lambda module, inputs, output: None)


def tidy_hook(model):
    model[0].register_forward_pre_hook(lambda module, inputs: None).remove()


def epoch(model, loader, optimizer, device, move=True):
    model.train()
    total = 0.0
    for X, y in loader:
        if move:
            X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
    return total / len(loader.dataset)


def accuracy(model, loader, device, move_labels=True):
    model.eval()
    correct = 0
    with torch.no_grad():
        for X, y in loader:
            predictions = model(X.to(device)).argmax(dim=1)
            correct += (predictions == (y.to(device) if move_labels else y)).sum().item()
    return correct / len(loader.dataset)


def device_name():
    return ("cuda" if torch.cuda.is_available() else
            "mps" if torch.backends.mps.is_available() else "cpu")


def labels_in_order(loader):
    return [int(v) for _, y in loader for v in y]


def uncounted(model, steps):
    model._forward_pre_hooks.clear()  # the grader's step counter goes with it
    for _ in range(steps):
        model(torch.randn(2, 4))


def _keep(a):
    return a


class FunctionShortcut(nn.Module):
    """A block whose shortcut is a plain function (the contract: "a module (or function)")."""

    def __init__(self, features, lam=False):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.shortcut = (lambda a: 2 * a) if lam else _keep

    def forward(self, a):
        return self.linear(a) + self.shortcut(a)


def elsewhere(model, loader, device, steps):
    import copy
    twin = copy.deepcopy(model)
    twin._forward_pre_hooks.clear()
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(steps):
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            F.cross_entropy(twin(X), y).backward()
            optimizer.step()
    model.load_state_dict(twin.state_dict())


def erase_record(model, loader, optimizer, device, how="clear"):
    epoch(model, loader, optimizer, device, move=False)
    X, _ = next(iter(loader))
    if how == "clear":
        type(X).used_unmoved.clear()
    elif how == "replace":
        type(X).used_unmoved = []
    else:  # the hooks that count work
        torch.nn.modules.module._global_forward_pre_hooks.clear()
'''


@pytest.fixture(scope="module")
def subject():
    sub = Subject(Limits(cell_timeout=20), sandbox=False)
    sub.client.request({"op": "init", "cells": [["student", STUDENT]],
                        "helpers": helpers_source()}, first_timeout=proxy.STARTUP_SECONDS)
    yield sub
    sub.close()


def test_functions_return_data_and_exceptions_keep_their_type(subject):
    picky = subject.client.lookup("picky")
    assert picky(3) == [3, 3.0, (3,)]
    with pytest.raises(ValueError, match="n must be >= 0"):
        picky(-1)
    with pytest.raises(KeyError):
        subject.client.lookup("not_defined")


def test_objects_that_are_not_data_come_back_opaque(subject):
    value = subject.client.lookup("anything")()
    assert isinstance(value, proxy.Opaque) and value != 1 and not (value == 2)


def test_class_proxy_mirrors_the_module_and_computes_in_the_subject(subject):
    Block = subject.client.lookup("Block")
    block = Block(5)
    assert isinstance(block, Block) and isinstance(block, nn.Module)
    assert isinstance(block.linear1, nn.Linear) and block.linear2.weight.shape == (5, 5)
    assert [n for n, _ in block.named_parameters()] == [
        "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]
    a = torch.randn(7, 5)

    def reference(a):
        return F.relu(block.linear2(F.relu(block.linear1(a))) + a)

    with torch.no_grad():
        assert torch.allclose(block(a), reference(a))
        block.linear1.weight.normal_()  # changed here: the subject must compute with it
        assert torch.allclose(block(a), reference(a))
    # backward through the subject's graph
    a1, a2 = a.clone().requires_grad_(True), a.clone().requires_grad_(True)
    block(a1).sum().backward()
    grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    reference(a2).sum().backward()
    assert torch.allclose(a1.grad, a2.grad)
    assert all(torch.allclose(g, p.grad) for g, p in zip(grads, block.parameters(), strict=True))


def test_in_place_on_an_intermediate_input_is_allowed_as_it_is_here(subject):
    """An input that is an intermediate result here (not a leaf) may be changed in place by the
    student's forward, as it could be without the subject; gradients are still right."""
    client = subject.client
    block = client.lookup("InPlace")(3)
    x = torch.randn(4, 3, requires_grad=True)
    h = x * 1.0  # not a leaf
    out = block(h)
    out.sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, torch.full_like(x, 2.0))
    leaf = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        block(leaf)


def test_deepcopy_is_independent(subject):
    block = subject.client.lookup("Block")(3)
    twin = copy.deepcopy(block)
    with torch.no_grad():
        # shifts every output of the twin by +10 (zeroing linear1 instead left the outputs
        # equal whenever every hidden unit of the original was off: about 1 run in 64)
        twin.linear2.bias.add_(10.0)
        x = torch.randn(2, 3)
        assert not torch.equal(block(x), twin(x))
        assert not torch.equal(block.linear2.bias, twin.linear2.bias)


def test_changes_made_by_the_subject_come_back(subject):
    client = subject.client
    block = client.lookup("Block")(4)
    weight = block.linear2.weight
    assert client.lookup("zero_")(block) is block
    assert block.linear2.weight is weight and torch.count_nonzero(weight) == 0
    # a module built here (not the student's) is sent as data and synced back
    local = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    local.train()
    assert client.lookup("is_training")(local) == [False, False, False]
    assert not local.training and not local[0].training
    x = torch.zeros(3)
    client.lookup("bump_")(x)
    assert torch.equal(x, torch.ones(3))


def test_library_use_is_reported_as_before(subject):
    uses = subject.client.lookup("uses_library")
    with pytest.raises(AssertionError, match="course library"):
        expect_own_implementation(uses, "uses_library")
    expect_own_implementation(subject.client.lookup("picky"), "picky")
    expect_own_implementation(subject.client.lookup("Block"), "Block")


def test_a_hanging_or_dying_subject_ends_the_conversation():
    for name in ("hang", "crash"):
        sub = Subject(Limits(cell_timeout=3), sandbox=False)
        try:
            sub.client.request({"op": "init", "cells": [["student", STUDENT]]},
                               first_timeout=proxy.STARTUP_SECONDS)
            with pytest.raises(proxy.SubjectDied):
                sub.client.lookup(name)()
            with pytest.raises(proxy.SubjectDied):  # and it stays dead
                sub.client.lookup("picky")
        finally:
            sub.close()


def test_hooks_on_submodules_see_the_subjects_calls(subject):
    """Checks find the order of calls with forward pre-hooks and forward hooks on the layers of a
    student's module; both are replayed from the subject's trace, in the order of the calls."""
    block = subject.client.lookup("Block")(4)
    pre, post = [], []
    handles = [m.register_forward_pre_hook(lambda module, inputs: pre.append(module))
               for m in (block.linear2, block.linear1)]  # registered in the other order
    handles += [m.register_forward_hook(lambda module, inputs, out: post.append(out.shape))
                for m in (block.linear1, block.linear2)]
    try:
        with torch.no_grad():
            block(torch.randn(3, 4))
    finally:
        for handle in handles:
            handle.remove()
    assert pre == [block.linear1, block.linear2]
    assert post == [(3, 4), (3, 4)]


def test_hooks_a_student_leaves_behind_are_seen(subject):
    """A function that registers a hook on a module the grader passed and does not remove it:
    the grader's copy shows a hook there too (a check can require that none is left)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    subject.client.lookup("tidy_hook")(model)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    subject.client.lookup("leave_hook")(model)
    assert len(model[0]._forward_hooks) == 1 and not model[1]._forward_hooks
    with torch.no_grad():
        assert model(torch.ones(1, 2)).shape == (1, 2)  # the stand-in changes nothing


# --------------------------------------------------------------------------- training functions


def _problem(seed: int):
    torch.manual_seed(seed)
    X, y = torch.randn(23, 4), torch.randint(0, 3, (23,))
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    return X, y, model.eval()


def _reference_epoch(model, loader, optimizer):
    model.train()
    total = 0.0
    for X, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
    return total / len(loader.dataset)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_training_function_runs_on_a_described_loader_and_optimizer(subject, kind):
    """The model, loader and optimizer go as descriptions; the model's new state and the
    optimizer's state (momentum, Adam's moments) come back: two epochs in the subject equal two
    epochs here."""
    from torch.utils.data import DataLoader, TensorDataset

    X, y, model = _problem(0)
    twin = copy.deepcopy(model)
    make = {"SGD": lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
            "Adam": lambda m: torch.optim.Adam(m.parameters(), lr=0.01)}[kind]
    theirs, ours = make(model), make(twin)
    epoch = subject.client.lookup("epoch")
    for _ in range(2):
        loader = DataLoader(TensorDataset(X, y), batch_size=8)
        got = epoch(model, loader, theirs, torch.device("cpu"))
        want = _reference_epoch(twin, DataLoader(TensorDataset(X, y), batch_size=8), ours)
        assert abs(got - want) < 1e-6
        for (name, p), q in zip(model.state_dict().items(), twin.state_dict().values(),
                                strict=True):
            assert torch.allclose(p.float(), q.float(), atol=1e-6), name
    assert model.training  # the train mode it left
    assert set(theirs.state) == set(model.parameters())
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        for key, value in ours.state[q].items():
            assert torch.allclose(torch.as_tensor(theirs.state[p][key]),
                                  torch.as_tensor(value)), key


def test_what_cannot_be_described_is_refused(subject):
    from torch.utils.data import DataLoader, TensorDataset

    X, y, model = _problem(1)
    epoch = subject.client.lookup("epoch")
    loader = DataLoader(TensorDataset(X, y), batch_size=8)
    with pytest.raises(TypeError, match="LBFGS"):
        epoch(model, loader, torch.optim.LBFGS(model.parameters()), torch.device("cpu"))
    with pytest.raises(TypeError, match="TensorDataset"):
        epoch(model, DataLoader(list(zip(X, y, strict=True)), batch_size=8),
              torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"))
    other = nn.Linear(4, 3)  # an optimizer of a model that is not passed along
    with pytest.raises(TypeError, match="must belong to a model"):
        epoch(model, loader, torch.optim.SGD(other.parameters(), lr=0.1), torch.device("cpu"))


def test_the_shuffled_order_comes_from_the_graders_seed(subject):
    from torch.utils.data import DataLoader, TensorDataset

    labels = subject.client.lookup("labels_in_order")
    data = TensorDataset(torch.zeros(40, 1), torch.arange(40))

    def order(seed):
        generator = torch.Generator().manual_seed(seed)
        return labels(DataLoader(data, batch_size=7, shuffle=True, generator=generator))

    assert order(5) == order(5) != order(6)
    assert sorted(order(5)) == list(range(40))
    assert labels(DataLoader(data, batch_size=7)) == list(range(40))


def test_the_machine_a_check_plays_is_played_in_the_subject(subject):
    """pick_device's checks patch torch.cuda / MPS availability here; the subject is told the
    machine ([CUDA, MPS]) and plays it for that call only."""
    device_name = subject.client.lookup("device_name")
    for cuda, mps, want in [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        saved = instruments.play_machine(cuda, mps)
        try:
            assert device_name() == want
        finally:
            instruments.restore(saved)
    assert device_name() == "cpu"


def test_host_batches_report_a_missing_move(subject):
    X, y, model = _problem(2)
    epoch = subject.client.lookup("epoch")
    for move, expected in ((True, []), (False, ["cross_entropy", "linear"])):
        ex5.HostBatch.used_unmoved = []
        epoch(model, ex5.host_loader(X, y, 8), torch.optim.SGD(model.parameters(), lr=0.1),
              torch.device("cpu"), move=move)
        assert sorted(set(ex5.HostBatch.used_unmoved)) == expected
    ex5.HostBatch.used_unmoved = []


def test_the_graders_hooks_see_the_subjects_calls_and_modes(subject):
    """Hooks a check puts on its model are replayed with each call the subject made, under the
    grad mode and train mode it had then; mark_device runs in the subject (labels on the host
    meeting predictions "on the device" are noticed there)."""
    X, y, model = _problem(3)
    model.train()
    seen = []
    handles = [model[1].register_forward_hook(
                   lambda m, inputs, output: seen.append((m.training, torch.is_grad_enabled(),
                                                          output.dtype, len(inputs[0])))),
               model.register_forward_pre_hook(lambda m, inputs: seen.append("pre")),
               model.register_forward_hook(instruments.mark_device)]
    accuracy = subject.client.lookup("accuracy")
    try:
        ex5.HostBatch.used_unmoved = []
        got = accuracy(model, ex5.host_loader(X, y, 10), torch.device("cpu"))
        assert ex5.HostBatch.used_unmoved == []
        accuracy(model, ex5.host_loader(X, y, 10), torch.device("cpu"), move_labels=False)
        assert "__eq__" in ex5.HostBatch.used_unmoved
    finally:
        for h in handles:
            h.remove()
        ex5.HostBatch.used_unmoved = []
    assert seen[:6] == ["pre", (False, False, torch.float32, 10)] * 2 + [
        "pre", (False, False, torch.float32, 3)]
    assert model.training is False  # evaluation left it in eval mode
    with torch.no_grad():
        want = (model(X).argmax(dim=1) == y).float().mean().item()
    assert abs(got - want) < 1e-6


def test_nonsense_about_an_optimizer_ends_the_conversation():
    """Student code that rewrites the subject's answer about the optimizer (found through the
    garbage collector) gets the call refused as a dead subject (its test cell scores 0)."""
    from torch.utils.data import DataLoader, TensorDataset

    forge = STUDENT + '''

def forge_optimizer_answers():
    import gc
    for cls in [o for o in gc.get_objects() if isinstance(o, type) and o.__name__ == "_Call"]:
        cls.optimizer_states = lambda self, out: [{"groups": [], "state": [[[0, "0.weight"], 1]]}]
'''
    sub = Subject(Limits(cell_timeout=20), sandbox=False)
    try:
        sub.client.request({"op": "init", "cells": [["student", forge]]},
                           first_timeout=proxy.STARTUP_SECONDS)
        sub.client.lookup("forge_optimizer_answers")()
        X, y, model = _problem(4)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with pytest.raises(proxy.SubjectDied, match="nonsense"):
            sub.client.lookup("epoch")(model, DataLoader(TensorDataset(X, y), batch_size=8),
                                       optimizer, torch.device("cpu"))
        assert not optimizer.state
        with pytest.raises(proxy.SubjectDied):  # and it stays dead
            sub.client.lookup("epoch")
    finally:
        sub.close()


def test_taking_the_graders_hooks_off_fails_the_check(subject):
    """The grader counts forward passes with hooks on its model; a function that clears them
    there (to hide steps over a budget) is refused, not counted as zero steps."""
    model = nn.Sequential(nn.Linear(4, 2))
    steps = []
    handle = model.register_forward_pre_hook(lambda m, inputs: steps.append(1))
    try:
        with pytest.raises(AssertionError, match="removed hooks"):
            subject.client.lookup("uncounted")(model, 5)
    finally:
        handle.remove()
    assert steps == []


def test_a_function_valued_attribute_crosses_as_a_function(subject):
    """A module attribute that holds a function (a `shortcut` that is a plain function or a
    lambda) is there on the grader's side, and calling it runs the student's function."""
    Block = subject.client.lookup("FunctionShortcut")
    for lam, factor in ((False, 1.0), (True, 2.0)):
        block = Block(3, lam=lam)
        assert callable(block.shortcut) and not isinstance(block.shortcut, nn.Module)
        a = torch.randn(4, 3)
        assert torch.allclose(block.shortcut(a), factor * a)
        assert torch.allclose(block(a), block.linear(a) + factor * a, atol=1e-6)


def test_work_is_counted_on_any_module_in_the_subject(subject):
    """Under count_work, the subject counts every forward pass with gradients of any module
    and every optimizer step: a hook-free copy trained there is counted."""
    X, y, model = _problem(5)
    with instruments.count_work() as work:
        subject.client.lookup("elsewhere")(model, ex5.host_loader(X, y, 8), torch.device("cpu"),
                                           2)
    # 2 epochs of 3 batches (8, 8, 7 rows) through 3 layers with parameters; SGD over the
    # copy's 6 parameter tensors, 6 steps
    assert work.as_data() == {"calls": 18, "rows": 138, "updates": 36, "changed": False}


@pytest.mark.parametrize("how", ["clear", "replace"])
def test_a_record_the_answer_erases_fails_the_check(subject, how):
    """Batches not moved, then the record of it erased: refused like a wrong answer (issue 21),
    not read as "every batch moved" (each call starts a fresh record there)."""
    X, y, model = _problem(6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    record = instruments.start_record()
    with pytest.raises(AssertionError, match="cleared or rewritten"):
        subject.client.lookup("erase_record")(model, ex5.host_loader(X, y, 8), optimizer,
                                              torch.device("cpu"), how=how)
    assert instruments.finish_record(record) == []  # nothing of it reached the record here


def test_taking_the_global_counting_hooks_off_is_reported(subject):
    X, y, model = _problem(7)
    with instruments.count_work() as work:
        subject.client.lookup("erase_record")(model, ex5.host_loader(X, y, 8),
                                              torch.optim.SGD(model.parameters(), lr=0.1),
                                              torch.device("cpu"), how="hooks")
    assert work.changed
