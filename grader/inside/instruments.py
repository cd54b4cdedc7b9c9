"""What a student's training function is run on, on both sides of the trusted-verdict wire.

ex5's checks hand `train_one_epoch`, `evaluate` and `train_digits` a model, a DataLoader, an
optimizer and a device, and watch what the function does with them. Under trusted verdicts the
function runs in the subject (grader.inside.subject) on objects the grader *describes*
(grader.judging.proxy):

* a loader: its tensors, batch size, shuffle flag, a seed drawn by the grader, and whether its
  batches are `HostBatch` tensors that notice being used before `.to(device)`;
* an optimizer: one of `OPTIMIZERS` by name, its hyper-parameters and state, bound in the subject
  to the parameters of a model sent in the same request;
* a machine: whether CUDA and Apple MPS are available (`play_machine`), set up in the subject
  for the call — a described environment, never code from a check;
* the work a call does (`count_work`): every forward call with gradients of *any* module that
  holds parameters and every optimizer step, counted by torch's global hooks (a step budget is
  not dodged by training a hook-free copy of the model).

The host-batch record is kept honest (`start_record` / `finish_record`): a call that clears or
replaces `HostBatch.used_unmoved`, or rebinds an instrument's function, is reported as such and
fails the check — it is not read as "no batch was left on the host". Likewise a call that takes
the global counting hooks off. (Code that searches this module out can still forge both; the
scores that matter are compared with references on the trusted side.)

This file is imported by the trusted side (grader.checks.ex5, grader.judging.proxy) and sent as
source into the subject (like grader/inside/wire.py), so it depends on nothing but torch and the
standard library. What the subject reports from these instruments is data the student's process
could forge; what decides a score (losses, weights, accuracies) is compared with references computed
on the trusted side.
"""

from __future__ import annotations

import contextlib

import torch

# optimizers a request may describe (torch.optim class names)
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
              "RAdam")


# --------------------------------------------------------------------------- the machine


def play_machine(cuda: bool, mps: bool) -> list:
    """Make torch report a machine with(out) CUDA and Apple MPS (also through the
    device-generic torch.accelerator API); return what `restore` needs."""
    saved = [(torch.cuda, "is_available", torch.cuda.is_available),
             (torch.cuda, "device_count", torch.cuda.device_count),
             (torch.backends.mps, "is_available", torch.backends.mps.is_available),
             (torch.backends.mps, "is_built", torch.backends.mps.is_built)]
    torch.cuda.is_available = lambda: cuda
    torch.cuda.device_count = lambda: 1 if cuda else 0
    torch.backends.mps.is_available = lambda: mps
    torch.backends.mps.is_built = lambda: mps
    accelerator = torch.device("cuda") if cuda else torch.device("mps") if mps else None
    saved += [(torch.accelerator, name, getattr(torch.accelerator, name))
              for name in ("current_accelerator", "is_available", "device_count")]
    torch.accelerator.current_accelerator = lambda check_available=False: accelerator
    torch.accelerator.is_available = lambda: accelerator is not None
    torch.accelerator.device_count = lambda: 0 if accelerator is None else 1
    return saved


def restore(saved: list) -> None:
    for owner, name, original in saved:
        setattr(owner, name, original)


def machine() -> list[bool]:
    """[CUDA available, MPS available] as this process's torch reports them now."""
    return [bool(torch.cuda.is_available()), bool(torch.backends.mps.is_available())]


# --------------------------------------------------------------------------- host batches


class HostBatch(torch.Tensor):
    """A batch tensor still "on the host": it records being combined with other tensors (the
    model's weights, its logits) before `.to(device)`; that is a device-mismatch error on a GPU.

    Operations on batches alone (`X.float()`, `X / 255`, `len(y)`, `X.shape`) keep it tracked
    and are fine; `.to(device)` gives an ordinary tensor.
    """

    used_unmoved: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name, out = _plain_call(func, args, kwargs)
        if name == "to" and _names_device(args[1:], kwargs):
            # Moved: from now on an ordinary tensor (a new Python object sharing memory).
            return out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else out
        tensors = [t for t in _flatten((args, kwargs)) if isinstance(t, torch.Tensor)]
        if all(isinstance(t, HostBatch) for t in tensors):
            return _rewrap(out)  # batch-only work (conversion, indexing, metadata): still host
        note_unmoved([name])
        return out


def _plain_call(func, args, kwargs: dict) -> tuple[str, object]:
    """(func's name, its result computed as on ordinary tensors): the subclasses' own
    __torch_function__ is off inside, so they only look at what went in and came out."""
    with torch._C.DisableTorchFunctionSubclass():
        out = func(*args, **kwargs)
    return getattr(func, "__name__", str(func)), out


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    return [value]


def _rewrap(out):
    """Tensors computed from batches alone are still on the host: keep them tracked."""
    if isinstance(out, torch.Tensor) and not isinstance(out, HostBatch):
        return out.as_subclass(HostBatch)
    if isinstance(out, (tuple, list)):
        return type(out)([_rewrap(o) for o in out])
    return out


class DeviceResult(torch.Tensor):
    """The model's output, "on the device": combining it with a batch tensor that is still on the
    host (labels never moved) is a device-mismatch error on a GPU, and is recorded as such.

    Bringing it back with `.cpu()` (or `.to("cpu")`, a device other than the one under test)
    makes it a host tensor again, which may then meet host labels: `preds.cpu() == y` is correct.
    """

    device_under_test: torch.device | None = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name, out = _plain_call(func, args, kwargs)
        if name == "cpu" or (name == "to" and _names_host(args[1:], kwargs)):
            return _rewrap(out)  # back on the host, like the batches
        tensors = [t for t in _flatten((args, kwargs)) if isinstance(t, torch.Tensor)]
        if any(isinstance(t, HostBatch) for t in tensors):
            note_unmoved([name])
            return out
        return _wrap(out, cls)


def _wrap(out, cls):
    if isinstance(out, torch.Tensor) and not isinstance(out, cls):
        return out.as_subclass(cls)
    if isinstance(out, (tuple, list)):
        return type(out)([_wrap(o, cls) for o in out])
    return out


def _names_host(args, kwargs) -> bool:
    """`.to(...)` names the host: "cpu", or a CPU device that is not the device under test."""
    for value in list(args) + [kwargs.get("device")]:
        if isinstance(value, str) and value.startswith("cpu"):
            return True
        if isinstance(value, torch.device) and value.type == "cpu" \
                and value is not DeviceResult.device_under_test:
            return True
    return False


def _names_device(args, kwargs) -> bool:
    values = list(args) + [kwargs.get("device")]
    return any(isinstance(v, (torch.device, str, torch.Tensor)) for v in values)


def mark_device(module, inputs, output):
    """A forward hook: the module's output counts as "on the device" (a DeviceResult). Run in
    the subject as it is here (it changes what the student's code computes with)."""
    return output.as_subclass(DeviceResult) if isinstance(output, torch.Tensor) else output


def host_collate(items):
    """collate_fn of a loader whose batches are HostBatch tensors: [X (N, ...), y (N,)]."""
    return [torch.stack([x for x, _ in items]).as_subclass(HostBatch),
            torch.stack([t for _, t in items]).as_subclass(HostBatch)]


HOST_BATCHES = "wire_host_batches"  # a DataLoader attribute: its collate_fn is host_collate


# --------------------------------------------------------------------------- the record


_notes = [0]  # how many names were noted since start_record (a second count of the record)


def note_unmoved(names) -> None:
    """Record operations that used a batch still on the host (here, or reported by a subject)."""
    for name in names:
        HostBatch.used_unmoved.append(str(name))
        _notes[0] += 1


def _instrument_code() -> list:
    """(owner, attribute, object, code object) of everything that takes the record."""
    found = [(HostBatch, "__torch_function__"), (DeviceResult, "__torch_function__")]
    module = globals()
    names = ("note_unmoved", "_plain_call", "_flatten", "_rewrap", "_wrap", "_names_host",
             "_names_device", "mark_device", "host_collate")
    entries = []
    for owner, name in found:
        value = vars(owner)[name]
        entries.append((owner, name, value, value.__func__.__code__))
    for name in names:
        entries.append((module, name, module[name], module[name].__code__))
    return entries


class Record:
    """One call's record of batches used before `.to(device)` (see start_record)."""

    def __init__(self):
        self.log: list[str] = []
        self.code = _ORIGINAL_CODE  # as imported, before any student code ran


def start_record() -> Record:
    """A fresh, empty HostBatch record for one call of the student's code."""
    record = Record()
    HostBatch.used_unmoved = record.log
    _notes[0] = 0
    return record


def finish_record(record: Record) -> list[str] | None:
    """The operations recorded since `start_record`, or None when the record was cleared,
    replaced or shortened, or an instrument's code was rebound, in between."""
    intact = HostBatch.used_unmoved is record.log and len(record.log) == _notes[0]
    for owner, name, value, code in record.code:
        current = owner.get(name) if isinstance(owner, dict) else vars(owner).get(name)
        function = getattr(current, "__func__", current)
        intact = intact and current is value and getattr(function, "__code__", None) is code
    return list(record.log) if intact else None


_ORIGINAL_CODE = _instrument_code()
TAMPERED = "the grader's record of batches left on the host was cleared or rewritten"


# --------------------------------------------------------------------------- work done


class Work:
    """What one call did, counted layer by layer so that no way of calling a model hides work:
    `calls`, the forward calls with gradients of modules holding parameters of their own (a
    pass of the digits net is 5 such calls, whether made as `model(X)` or `model.forward(X)`,
    on the model or on a copy), `rows`, the rows of their first inputs, and `updates`, the
    parameter tensors that optimizer steps updated (one step of an optimizer over the whole net
    updates all of them, whether one optimizer or several share the parameters). `changed`: the
    counting hooks were taken off or bypassed during the call."""

    FIELDS = ("calls", "rows", "updates")

    def __init__(self, calls=0, rows=0, updates=0, changed=False):
        self.calls, self.rows, self.updates = int(calls), int(rows), int(updates)
        self.changed = bool(changed)

    def add(self, data: dict) -> None:
        """Add a subject's report (`as_data`): counts, and whether its hooks stayed on."""
        for field in self.FIELDS:
            setattr(self, field, getattr(self, field) + max(0, int(data.get(field, 0))))
        self.changed = self.changed or bool(data.get("changed", True))

    def as_data(self) -> dict:
        return {"calls": self.calls, "rows": self.rows, "updates": self.updates,
                "changed": self.changed}


ACTIVE_WORK: list = []  # the Work being counted here now (a check's count_work), innermost last


def _rows(inputs) -> int:
    first = next((t for t in _flatten(inputs) if isinstance(t, torch.Tensor)), None)
    return int(first.shape[0]) if first is not None and first.dim() > 0 else 1


def _holds_parameters(module) -> bool:
    return any(p is not None for p in module._parameters.values())


@contextlib.contextmanager
def count_work():
    """Count the work done inside the block with torch's global hooks (module forward pre-hook,
    optimizer step post-hook): see Work. Yields the Work."""
    from torch.nn.modules import module as nn_module
    from torch.optim import optimizer as optim_module

    work = Work()

    def pre(module, inputs):
        if torch.is_grad_enabled() and _holds_parameters(module):
            work.calls += 1
            work.rows += _rows(inputs)

    def step(optimizer, args, kwargs):
        work.updates += sum(len(group["params"]) for group in optimizer.param_groups)

    # (module, name of its hook table, handle, hook): the tables are looked up again at the
    # end, by name, since torch reads them by name on every call (a replaced table is noticed)
    handles = [(nn_module, "_global_forward_pre_hooks",
                nn_module.register_module_forward_pre_hook(pre), pre),
               (optim_module, "_global_optimizer_post_hooks",
                optim_module.register_optimizer_step_post_hook(step), step)]
    ACTIVE_WORK.append(work)
    try:
        yield work
    finally:
        ACTIVE_WORK.remove(work)
        for owner, table, handle, hook in handles:
            current = getattr(owner, table, None)
            work.changed = work.changed or not isinstance(current, dict) \
                or current.get(handle.id) is not hook
            handle.remove()
        work.changed = work.changed or _module_calls() != _ORIGINAL_CALLS


def _module_calls() -> list:
    """What runs the global hooks on every module call: rebinding it skips them."""
    from torch.optim import Optimizer

    nn_call = torch.nn.Module.__dict__.get("__call__")
    return [nn_call, torch.nn.Module.__dict__.get("_call_impl"),
            getattr(nn_call, "__code__", None), Optimizer.__dict__.get("profile_hook_step"),
            Optimizer.__dict__.get("_patch_step_function")]


_ORIGINAL_CALLS = _module_calls()  # as imported, before any student code ran
