"""The grader's own objects in a call to the subject: sent as descriptions, updated from data.

A check hands a student's function (a proxy, grader.judging.proxy) objects built here. Modules
travel as data (grader.inside.wire); this module describes the rest of what ex5's training functions
take, and applies what comes back:

* a module with hooks of the grader's (a check counting forward passes, recording train mode or
  dtypes): the subject records each call of that module (inputs, output, grad mode, train mode)
  and the hooks here are replayed with them, in order, under the grad and train mode the subject
  had; `instruments.mark_device` hooks run in the subject instead (they change the output);
  a function that takes the recording hooks off fails the check (its calls would go uncounted);
* a DataLoader over a TensorDataset: tensors, batch size, shuffle flag and a seed drawn here
  (from the loader's generator, else torch's RNG), and whether its batches are HostBatch tensors
  (then the names of the operations that used a batch before `.to(device)` come back);
* an optimizer of `instruments.OPTIMIZERS`: its kind, hyper-parameters and state, its parameters
  named by (module, qualified name) among the modules of the same call; its new state comes back;
* a loader handed over while a check counts work here (`instruments.count_work`) has the
  subject count the whole call's work with torch's global hooks; the counts are added here;
* the machine this process plays (`torch.cuda` / MPS availability, patched by a check) goes with
  every call, and the subject plays it while the function runs.
"""

from __future__ import annotations

import torch
from torch.utils.data import (
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
    default_collate,
)

from grader.inside import instruments, wire

MAX_UNMOVED = 1000  # operation names reported per call (one per use is plenty)


class Described:
    """What one call sends besides plain values, and the write-back of the answer."""

    def __init__(self):
        self.local: list = []  # modules built here, in the order they are encoded
        self.traced: list = []  # modules whose hooks are replayed from the subject's record
        self.traced_ids: dict[int, int] = {}
        self.optimizers: list = []  # (optimizer, {id(param): [module index, name]})
        self.host = False  # a loader of HostBatch tensors is in the call
        self.work = False  # the subject counts the call's work (a check counts it here)

    # ----------------------------------------------------------------- modules with hooks

    def module_node(self, module) -> dict:
        """Extra node fields for a module built here ({} when it has no hooks of the grader)."""
        pre, post = _grader_hooks(module)
        if not pre and not post:
            return {}
        node: dict = {}
        post_hooks = [h for h in post if h is not instruments.mark_device]
        if pre or post_hooks:
            if id(module) not in self.traced_ids:
                self.traced_ids[id(module)] = len(self.traced)
                self.traced.append(module)
            node["trace"] = self.traced_ids[id(module)]
            node["events"] = ["pre"] * bool(pre) + ["post"] * bool(post_hooks)
        if instruments.mark_device in post:
            node["marks"] = ["device"]
        name = wire.standard_name(module, ignore_hooks=True)
        if name is not None:
            node["std"] = name
        return node

    def replay(self, events) -> None:
        """Run the hooks here on the subject's record of each call ("pre": before a forward,
        "post": after it), in the order they happened there."""
        for index, when, inputs, output, grad, training in events:
            module = self.traced[int(index)]
            pre, post = _grader_hooks(module)
            was = module.training
            module.training = bool(training)
            try:
                with torch.set_grad_enabled(bool(grad)):
                    for hook in pre if when == "pre" else []:
                        hook(module, tuple(inputs))
                    for hook in post if when == "post" else []:
                        if hook is not instruments.mark_device:
                            hook(module, tuple(inputs), output)
            finally:
                module.training = was

    # ----------------------------------------------------------------- loaders and optimizers

    def loader(self, loader: DataLoader, blobs: list[bytes]) -> dict:
        if type(loader.dataset) is not TensorDataset:
            raise TypeError("only a DataLoader over a TensorDataset can be sent to the student's "
                            f"code, not one over a {type(loader.dataset).__name__}")
        host = loader.collate_fn is instruments.host_collate
        if not host and loader.collate_fn is not default_collate:
            raise TypeError("a DataLoader with its own collate_fn cannot be sent")
        if type(loader.sampler) not in (RandomSampler, SequentialSampler):
            raise TypeError(f"a DataLoader with a {type(loader.sampler).__name__} cannot be sent")
        shuffle = type(loader.sampler) is RandomSampler
        seed = None
        if shuffle:  # the order is drawn here; the subject shuffles with this seed
            seed = int(torch.randint(0, 2**62, (), generator=loader.generator).item())
        self.host = self.host or host
        # a check counting the work done here (instruments.count_work) has it counted there
        self.work = self.work or bool(instruments.ACTIVE_WORK)
        return {"tensors": wire.encode(list(loader.dataset.tensors), blobs),
                "batch_size": loader.batch_size, "drop_last": bool(loader.drop_last),
                "shuffle": shuffle, "seed": seed, "host": host, "work": self.work}

    def optimizer(self, optimizer: torch.optim.Optimizer, blobs: list[bytes]) -> dict:
        kind = type(optimizer).__name__
        if kind not in instruments.OPTIMIZERS or getattr(torch.optim, kind) is not type(optimizer):
            raise TypeError(f"a {kind} optimizer cannot be sent to the student's code "
                            f"(one of {', '.join(instruments.OPTIMIZERS)} can)")
        where = {}  # id(parameter) -> [index in self.local, qualified name]
        for i, module in enumerate(self.local):
            for name, p in module.named_parameters():
                where.setdefault(id(p), [i, name])
        groups = []
        for group in optimizer.param_groups:
            missing = [p for p in group["params"] if id(p) not in where]
            if missing:
                raise TypeError("the optimizer's parameters must belong to a model passed "
                                "before it in the same call")
            hyper = {k: v for k, v in group.items() if k != "params"}
            groups.append({"params": [where[id(p)] for p in group["params"]],
                           "hyper": wire.encode(hyper, blobs)})
        state = [[where[id(p)], wire.encode(dict(s), blobs)]
                 for p, s in optimizer.state.items() if id(p) in where]
        self.optimizers.append((optimizer, where))
        return {"kind": kind, "groups": groups, "state": state}

    # ----------------------------------------------------------------- the answer

    def apply(self, reply: dict, blobs: list[bytes]) -> None:
        """After the modules' states are loaded: optimizers' new state, host-batch misuse,
        then the replay of the grader's hooks."""
        if reply.get("unwatched"):  # the subject's code took the recording hooks off
            raise AssertionError("your code removed hooks it did not register from the model "
                                 "it was given (the grader watches the forward passes there)")
        for (optimizer, where), back in zip(self.optimizers, reply.get("optimizers", []),
                                            strict=True):
            _load_optimizer(optimizer, where, back, blobs)
        if self.host:
            if reply.get("unmoved_tampered"):
                raise AssertionError(f"your code changed the grader's instruments: "
                                     f"{instruments.TAMPERED} (the check cannot tell whether "
                                     "batches were moved to the device)")
            unmoved = [str(name) for name in reply.get("unmoved", [])][:MAX_UNMOVED]
            instruments.note_unmoved(unmoved)
        if self.work:
            if not isinstance(reply.get("work"), dict):
                raise AssertionError("the student's process did not report the work it did")
            for work in instruments.ACTIVE_WORK[-1:]:
                work.add(reply["work"])
        if self.traced:
            self.replay(wire.decode(reply.get("local_trace", {"$l": []}), blobs))


def _grader_hooks(module) -> tuple[list, list]:
    """The forward pre-hooks and hooks put here (not wire's stand-ins for the subject's)."""
    stand_ins = (wire._noop_pre_hook, wire._noop_hook)
    pre = [h for h in module._forward_pre_hooks.values() if h not in stand_ins]
    post = [h for h in module._forward_hooks.values() if h not in stand_ins]
    return pre, post


def _load_optimizer(optimizer, where: dict, back: dict, blobs: list[bytes]) -> None:
    """The subject's optimizer after the call: hyper-parameters (a schedule may change lr) and
    per-parameter state (momentum buffers, Adam's moments)."""
    param_at = {tuple(ref): p for group in optimizer.param_groups for p in group["params"]
                for ref in [where[id(p)]]}
    for group, hyper in zip(optimizer.param_groups, back["groups"], strict=True):
        for key, value in wire.decode(hyper, blobs).items():
            if key != "params" and key in group:
                group[key] = value
    optimizer.state.clear()
    for ref, state in back["state"]:
        p = param_at.get(tuple(ref))
        if p is not None:
            optimizer.state[p] = wire.decode(state, blobs)
