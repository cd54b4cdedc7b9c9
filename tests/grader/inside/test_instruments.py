"""grader/inside/instruments.py on the trusted side, as a check uses it (the same source runs in
the subject): batches that notice being used before `.to(device)` (HostBatch, host_collate), a
model output "on the device" (DeviceResult, mark_device), the record of both kept honest
(start_record / finish_record), the machine a check plays (play_machine / restore), and the work
a call does (count_work, Work). Through a subject: tests/grader/judging/test_verdict_wire.py; in
ex5's checks: tests/grader/checks/test_ex5.py."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from grader.inside import instruments
from grader.inside.instruments import DeviceResult, HostBatch, Work


@pytest.fixture(autouse=True)
def fresh_record():
    """Each test starts with an empty record and leaves none behind."""
    HostBatch.used_unmoved = []
    yield
    HostBatch.used_unmoved = []
    DeviceResult.device_under_test = None


def _host_loader(X, y, batch_size):
    return DataLoader(TensorDataset(X, y), batch_size=batch_size,
                      collate_fn=instruments.host_collate)


# --------------------------------------------------------------------------- host batches


def test_host_batches_notice_a_missing_move():
    loader = _host_loader(torch.randn(6, 3), torch.arange(6), batch_size=4)
    for X, y in loader:
        assert len(y) == X.shape[0] == X.size(0)  # metadata is fine
        X = (X.float() / 2).to(torch.device("cpu"))  # batch-only work before the move is fine
        torch.nn.functional.linear(X, torch.ones(2, 3))
        assert (y.long().to("cpu") == torch.ones(len(y))).shape == y.shape
    assert HostBatch.used_unmoved == []
    for X, _ in loader:
        torch.nn.functional.linear(X, torch.ones(2, 3))
    assert HostBatch.used_unmoved == ["linear", "linear"]


def test_host_collate_stacks_the_items_as_host_batches():
    X, y = instruments.host_collate([(torch.ones(2), torch.tensor(0)),
                                     (torch.zeros(2), torch.tensor(1))])
    assert type(X) is HostBatch and type(y) is HostBatch
    assert torch.equal(X.as_subclass(torch.Tensor), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert y.tolist() == [0, 1]


def test_a_device_result_meets_host_labels_only_after_coming_back():
    model = torch.nn.Linear(3, 2)
    model.register_forward_hook(instruments.mark_device)
    X, y = instruments.host_collate([(torch.ones(3), torch.tensor(1))] * 4)
    logits = model(X.to("cpu"))
    assert type(logits) is DeviceResult
    assert type(logits.argmax(1)) is DeviceResult  # still on the device
    assert HostBatch.used_unmoved == []
    ok = logits.argmax(1).cpu() == y  # brought back first: correct
    assert ok.shape == (4,) and HostBatch.used_unmoved == []
    assert (logits.argmax(1) == y).shape == (4,)  # labels never moved: a mismatch on a GPU
    assert HostBatch.used_unmoved == ["__eq__"]


def test_moving_to_the_device_under_test_is_not_coming_back():
    device = torch.device("cpu")
    DeviceResult.device_under_test = device
    out = torch.ones(2).as_subclass(DeviceResult)
    assert type(out.to(device)) is DeviceResult  # the device the function was given
    assert type(out.to(torch.device("cpu"))) is HostBatch  # another object naming the host
    assert type(out.to("cpu")) is HostBatch


# --------------------------------------------------------------------------- the record


def test_the_record_holds_what_was_noted_since_it_started():
    record = instruments.start_record()
    instruments.note_unmoved(["linear", 3])
    used = instruments.finish_record(record)
    assert used == ["linear", "3"]
    used.append("changed by the caller")
    assert instruments.finish_record(record) == ["linear", "3"]  # a copy was handed out
    assert instruments.finish_record(instruments.start_record()) == []


@pytest.mark.parametrize("erase", ["pop", "replace", "rebind", "recode"])
def test_a_record_tampered_with_reads_as_none(erase, monkeypatch):
    record = instruments.start_record()
    instruments.note_unmoved(["linear", "add"])
    if erase == "pop":
        HostBatch.used_unmoved.pop()
    elif erase == "replace":
        HostBatch.used_unmoved = ["linear", "add"]
    elif erase == "rebind":  # an instrument's function replaced in the module
        monkeypatch.setattr(instruments, "note_unmoved", lambda names: None)
    else:  # the function kept, its code swapped
        monkeypatch.setattr(instruments._rewrap, "__code__", (lambda out: out).__code__)
    assert instruments.finish_record(record) is None


# --------------------------------------------------------------------------- the machine


@pytest.mark.parametrize("cuda, mps", [(True, False), (False, True), (False, False),
                                       (True, True)])
def test_a_played_machine_is_what_torch_reports_until_restored(cuda, mps):
    before = (torch.cuda.is_available, torch.cuda.device_count, torch.backends.mps.is_available,
              torch.accelerator.current_accelerator, torch.accelerator.is_available)
    real = instruments.machine()
    saved = instruments.play_machine(cuda, mps)
    try:
        assert instruments.machine() == [cuda, mps]
        assert torch.cuda.device_count() == (1 if cuda else 0)
        assert torch.backends.mps.is_built() is mps
        expected = "cuda" if cuda else "mps" if mps else None
        current = torch.accelerator.current_accelerator()
        assert (current.type if current is not None else None) == expected
        assert torch.accelerator.is_available() is (expected is not None)
    finally:
        instruments.restore(saved)
    assert instruments.machine() == real
    assert (torch.cuda.is_available, torch.cuda.device_count, torch.backends.mps.is_available,
            torch.accelerator.current_accelerator, torch.accelerator.is_available) == before


def test_every_optimizer_on_the_list_is_torchs():
    assert all(issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
               for name in instruments.OPTIMIZERS)


# --------------------------------------------------------------------------- work done


def _digits_net():
    """The shape of ex5's digits net: 5 layers with parameters (2 conv, 2 BN, Linear)."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


def test_work_is_counted_layer_by_layer_however_the_net_is_called():
    net = _digits_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    X = torch.randn(7, 1, 8, 8)
    with instruments.count_work() as work:
        net(X).sum().backward()  # one pass: 5 layers with parameters (2 conv, 2 BN, Linear)
        net.forward(X).sum().backward()  # the same pass, its layers called one by one
        optimizer.step()  # 10 parameter tensors
        with torch.no_grad():
            net(X)  # evaluation costs nothing
    assert work.as_data() == {"calls": 10, "rows": 70, "updates": 10, "changed": False}


@pytest.mark.parametrize("bypass", ["clear", "replace", "rebind_call"])
def test_count_work_notices_its_hooks_taken_off_or_bypassed(bypass):
    from collections import OrderedDict

    from torch.nn.modules import module as nn_module

    saved = (nn_module._global_forward_pre_hooks, torch.nn.Module.__call__)
    try:
        with instruments.count_work() as work:
            if bypass == "clear":
                nn_module._global_forward_pre_hooks.clear()
            elif bypass == "replace":
                nn_module._global_forward_pre_hooks = OrderedDict()
            else:
                torch.nn.Module.__call__ = lambda self, *args, **kwargs: self.forward(*args,
                                                                                     **kwargs)
            torch.nn.Linear(2, 2)(torch.randn(3, 2))
    finally:
        nn_module._global_forward_pre_hooks, torch.nn.Module.__call__ = saved
    assert work.changed


def test_counting_leaves_no_hook_behind_and_nests():
    from torch.nn.modules import module as nn_module

    hooks = dict(nn_module._global_forward_pre_hooks)
    layer = torch.nn.Linear(2, 2)
    with instruments.count_work() as outer:
        with instruments.count_work() as inner:
            assert instruments.ACTIVE_WORK[-2:] == [outer, inner]
            layer(torch.randn(1, 2))  # a 0-d input would count as one row
        layer(torch.randn(4, 2))
    assert (outer.calls, outer.rows, inner.calls, inner.rows) == (2, 5, 1, 1)
    assert dict(nn_module._global_forward_pre_hooks) == hooks
    assert outer not in instruments.ACTIVE_WORK
    layer(torch.randn(3, 2))
    assert outer.calls == 2  # nothing counted after the block


def test_a_subjects_work_report_is_bounded_below_and_presumed_changed():
    work = Work(calls=1, rows=2, updates=3)
    work.add({"calls": -50, "rows": 4, "updates": 2.9, "changed": False})
    assert work.as_data() == {"calls": 1, "rows": 6, "updates": 5, "changed": False}
    work.add({})  # a report that does not say its hooks stayed on
    assert work.changed is True
    with pytest.raises((TypeError, ValueError)):
        work.add({"calls": "many"})
