"""What a student's training function is run on, on both sides of the trusted-verdict wire.

ex5's checks hand `train_one_epoch`, `evaluate` and `train_digits` a model, a DataLoader, an
optimizer and a device, and watch what the function does with them. Under trusted verdicts the
function runs in the subject (grader.subject) on objects the grader *describes* (grader.proxy):

* a loader: its tensors, batch size, shuffle flag, a seed drawn by the grader, and whether its
  batches are `HostBatch` tensors that notice being used before `.to(device)`;
* an optimizer: one of `OPTIMIZERS` by name, its hyper-parameters and state, bound in the subject
  to the parameters of a model sent in the same request;
* a machine: whether CUDA and Apple MPS are available (`play_machine`), set up in the subject
  for the call — a described environment, never code from a check.

This file is imported by the trusted side (grader.checks.ex5, grader.proxy) and sent as source
into the subject (like grader/wire.py), so it depends on nothing but torch and the standard
library. What the subject reports from these instruments is data the student's process could
forge; what decides a score (losses, weights, accuracies) is compared with references computed
on the trusted side.
"""

from __future__ import annotations

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
        cls.used_unmoved.append(name)
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
            HostBatch.used_unmoved.append(name)
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
