"""The subject: a sandboxed process that holds a student's definitions and answers requests.

Usually the notebook's own kernel, once it has run the notebook (student code runs once per
submission): grader.isolation.sandbox.SandboxedExecute sends it this file's and
grader/inside/wire.py's source as a cell the notebook never shows, and `serve_kernel` answers on the
grader's private socket (grader.judging.verdict.KernelChannel) with the notebook's namespace;
grader/inside/instruments.py was installed in the kernel as torch loaded, before any student code
could use torch (grader.inside.tamper._install_instruments). Where the kernel
cannot serve, grader.judging.verdict starts a fresh one (inside bubblewrap) with the source text of
this file, grader/inside/wire.py and grader/inside/instruments.py: it never imports the grader,
reads requests on fd 0 and answers on fd 1 (both taken before any student code runs; the student's
prints go to /dev/null). Requests:

  init      {"cells": [[label, source], ...], "helpers": source}   run cells, report errors
  lookup    {"name"}                      a top-level name as data (function, class, module)
  call      {"target", "args", "kwargs", "push", "grad", "machine"}  call a function/class/method
            (arguments may be described loaders and optimizers, and modules with the grader's
            hooks; see grader.judging.described: what they did comes back with the answer)
  backward  {"tape", "grads"}             gradients of a kept forward (for autograd)
  copy      {"ref"}                       deepcopy a module, a new handle
Anything else is refused. Errors come back as {"error": {"type", "message"}}.

Whatever this process answers is data to the grader: the student's code may replace all of it,
and can gain nothing that computing the right function would not give — except where a check
relies on what the instruments here observe of *how* it computes (ex5: batches moved to the
device, gradient mode, forward passes counted), which code that attacks them can misreport, as
it could in the kernel.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import traceback

try:  # inside the sandbox, grader.judging.verdict installs wire.py's and instruments.py's source
    import grader_instruments as instruments
    import grader_wire as wire
except ImportError:
    from grader.inside import instruments, wire

import torch
from torch.utils.data import DataLoader, TensorDataset

MAX_MESSAGE = 2000  # characters of an exception message sent back
MAX_TAPES = 16  # forward passes kept for a backward request
MAX_TRACED_CALLS = 20000  # calls of the grader's watched modules recorded in one request


class _Call:
    """One call request's objects built from the grader's descriptions (grader.judging.described):
    modules (in order), optimizers, and the record of the watched modules' calls."""

    def __init__(self):
        self.made: list = []
        self.optimizers: list = []
        self.calls: list = []  # [trace index, "pre"/"post", inputs, output, grad, train mode]
        self.handles: list = []  # hooks put on the built modules, removed after the call
        self.kept: list = []  # (module, hook dict name, hook id) of those hooks
        self.host = False  # batches are HostBatch tensors
        self.work = False  # count the work the call does (instruments.count_work)
        self.marks = False  # a module's output counts as "on the device"

    def watch(self, module, node: dict) -> None:
        """Record the calls of a module the grader has hooks on; run its marks here."""
        if "trace" in node:
            index, events = int(node["trace"]), node.get("events", [])

            def record(m, inputs, output=None, when="post"):
                if len(self.calls) >= MAX_TRACED_CALLS:
                    raise RuntimeError(f"more than {MAX_TRACED_CALLS} forward passes of a "
                                       "module the grader watches in one call")
                self.calls.append([index, when, tuple(_plain(t) for t in inputs
                                                      if isinstance(t, torch.Tensor)),
                                   _plain(output) if isinstance(output, torch.Tensor) else None,
                                   torch.is_grad_enabled(), bool(m.training)])
            if "pre" in events:
                self._keep(module, "_forward_pre_hooks", module.register_forward_pre_hook(
                    lambda m, inputs: record(m, inputs, when="pre")))
            if "post" in events:
                self._keep(module, "_forward_hooks", module.register_forward_hook(record))
        if "device" in node.get("marks", []):
            self.marks = True
            self._keep(module, "_forward_hooks", module.register_forward_hook(
                instruments.mark_device))

    def _keep(self, module, where: str, handle) -> None:
        self.handles.append(handle)
        self.kept.append((module, where, handle.id))

    def unwatched(self) -> bool:
        """Whether the student's code took the grader's hooks off a module (what they record
        would then be missing: forward passes not counted)."""
        return any(key not in getattr(module, where, {}) for module, where, key in self.kept)

    def loader(self, spec: dict, blobs) -> DataLoader:
        tensors = wire.decode(spec["tensors"], blobs)
        generator = None
        if spec.get("shuffle"):  # the order the grader drew
            generator = torch.Generator().manual_seed(int(spec["seed"]))
        self.host = self.host or bool(spec.get("host"))
        self.work = self.work or bool(spec.get("work"))
        return DataLoader(TensorDataset(*tensors), batch_size=int(spec["batch_size"]),
                          shuffle=bool(spec.get("shuffle")), drop_last=bool(spec.get("drop_last")),
                          generator=generator,
                          collate_fn=instruments.host_collate if spec.get("host") else None)

    def optimizer(self, spec: dict, blobs):
        kind = str(spec["kind"])
        if kind not in instruments.OPTIMIZERS:
            raise ValueError(f"optimizer {kind!r} is not on the list")
        params = [dict(m.named_parameters()) for m in self.made]

        def param(ref):
            return params[int(ref[0])][str(ref[1])]
        groups = [{**wire.decode(g["hyper"], blobs), "params": [param(r) for r in g["params"]]}
                  for g in spec["groups"]]
        optimizer = getattr(torch.optim, kind)(groups)
        for ref, state in spec.get("state", []):
            optimizer.state[param(ref)] = wire.decode(state, blobs)
        where = {id(p): [i, name] for i, named in enumerate(params) for name, p in named.items()}
        self.optimizers.append((optimizer, where))
        return optimizer

    def optimizer_states(self, out: list) -> list:
        """Each optimizer after the call: hyper-parameters and state by parameter reference."""
        states = []
        for optimizer, where in self.optimizers:
            groups = [wire.encode({k: v for k, v in g.items() if k != "params"}, out)
                      for g in optimizer.param_groups]
            state = [[where[id(p)], wire.encode(dict(st), out)]
                     for p, st in optimizer.state.items() if id(p) in where]
            states.append({"groups": groups, "state": state})
        return states


class Server:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.ns: dict = {"__name__": "__main__"}
        self.objects: dict[int, object] = {}  # handle -> object (kept alive)
        self.handles: dict[int, int] = {}  # id(object) -> handle
        self.tapes: dict[int, tuple] = {}
        self.bundles: dict[str, dict] = {}
        self.library_references = lambda obj: []
        self.real_machine = instruments.machine()  # before any student code runs

    # ----------------------------------------------------------------- handles and trees

    def handle(self, obj) -> int:
        h = self.handles.get(id(obj))
        if h is None:
            h = len(self.objects) + 1
            self.objects[h], self.handles[id(obj)] = obj, h
        return h

    def _origin(self, obj) -> dict:
        refs = []
        try:
            refs = [str(r) for r in self.library_references(obj)][:5]
        except Exception:  # a broken scan reports nothing; the grader decides anyway
            pass
        return {"module": str(getattr(obj, "__module__", "") or ""),
                "name": str(getattr(obj, "__qualname__", type(obj).__name__)), "lib": refs}

    def _node(self, m) -> dict:
        if wire.standard_name(m) is not None:
            return {}
        cls = type(m)
        return {"h": self.handle(m), "cls": self.handle(cls), **self._origin(cls)}

    def tag(self, value, blobs):
        """wire.encode's hook: what is not plain data goes out as a handle."""
        if isinstance(value, torch.nn.Module):
            return {"$obj": self.handle(value),
                    "tree": wire.encode(wire.describe(value, self._node, functions=True),
                                        blobs, self.tag)}
        if isinstance(value, type):
            return {"$cls": self.handle(value), **self._origin(value)}
        if callable(value):
            return {"$fn": self.handle(value), **self._origin(value)}
        return {"$opaque": self.handle(value), "type": type(value).__name__,
                "repr": _safe_repr(value)}

    def _factory(self, call: _Call):
        def factory(node):
            if "ref" in node:
                return self.objects[int(node["ref"])], False
            if node.get("std") is not None:
                module = wire.empty_module(wire.STANDARD_MODULES[node["std"]])
            else:
                bundle = self.bundles.get(node["src"])
                if bundle is None:  # instructor code sent as source (a reference module)
                    bundle = {"__name__": str(node.get("module", "instructor"))}
                    exec(compile(node["src"], "<instructor>", "exec"), bundle)
                    self.bundles[node["src"]] = bundle
                module = wire.empty_module(bundle[node["name"]])
            call.watch(module, node)  # the grader's hooks there: record its calls
            return module, True
        return factory

    def untag(self, call: _Call):
        def unhook(tree, blobs):
            if "$ref" in tree:
                return self.objects[int(tree["$ref"])]
            if "$new" in tree:  # a module of the grader's, rebuilt here; synced back after
                node = wire.decode(tree["$new"], blobs)
                call.made.append(wire.build(node, self._factory(call)))
                return call.made[-1]
            if "$loader" in tree:
                return call.loader(tree["$loader"], blobs)
            if "$opt" in tree:
                return call.optimizer(tree["$opt"], blobs)
            raise wire.WireError(f"unknown tag {sorted(tree)[:3]}")
        return unhook

    # ----------------------------------------------------------------- requests

    def op_init(self, msg, blobs):
        helpers: dict = {"__name__": "grader_helpers"}
        if msg.get("helpers"):
            exec(compile(msg["helpers"], "<helpers>", "exec"), helpers)
            self.library_references = helpers.get("library_references", self.library_references)
        errors = []
        for index, (label, source) in enumerate(msg["cells"]):
            wire.send(self.writer, {"event": "cell", "index": index})
            try:
                exec(compile(source, f"<{label}>", "exec"), self.ns)
            except BaseException as e:  # noqa: BLE001 - a cell's error is the student's
                errors.append([label, _error(e)])
        return {"errors": errors}, []

    def op_lookup(self, msg, blobs):
        if msg["name"] not in self.ns:
            return {"missing": True}, []
        out: list[bytes] = []
        return {"value": wire.encode(self.ns[msg["name"]], out, self.tag)}, out

    def op_call(self, msg, blobs):
        call = _Call()
        made = call.made
        unhook = self.untag(call)
        for ref, state in msg.get("push", []):  # the grader's current values of its proxies
            wire.load_state(self.objects[int(ref)], wire.decode(state, blobs, unhook))
        target = wire.decode(msg["target"], blobs, unhook)
        if msg.get("method"):
            target = getattr(target, str(msg["method"]))
        args = wire.decode(msg["args"], blobs, unhook)
        kwargs = wire.decode(msg["kwargs"], blobs, unhook)
        tensors = [t for t in _walk(args) + _walk(kwargs) if isinstance(t, torch.Tensor)]
        versions = [t._version for t in tensors]
        watched = [self.objects[int(r)] for r, _ in msg.get("push", [])] + made
        ids = [wire.param_ids(m) for m in watched]
        calls: list = []  # (name, inputs, output) of the submodules the grader watches
        hooks = _watch(watched[0], msg.get("trace") or [], calls) if watched else []
        hooks += call.handles
        saved = self._play(msg.get("machine"))
        record = instruments.start_record()
        if call.marks:  # the device the function is given is "the device" for DeviceResult
            instruments.DeviceResult.device_under_test = next(
                (d for d in _walk(args) + _walk(kwargs) if isinstance(d, torch.device)), None)
        counting = instruments.count_work() if call.work else contextlib.nullcontext()
        try:
            with counting as work, torch.set_grad_enabled(bool(msg.get("grad"))):
                result = target(*args, **kwargs)
        finally:
            unwatched = call.unwatched()
            for h in hooks:
                h.remove()
            instruments.restore(saved)
            instruments.DeviceResult.device_under_test = None
        out: list[bytes] = []
        reply = {"after": [wire.encode(wire.module_state(m, i, hooks=True), out)
                           for m, i in zip(watched, ids, strict=True)],
                 "made": [self.handle(m) for m in made],
                 "mutated": [[k, wire.encode(t.detach(), out)] for k, t in enumerate(tensors)
                             if t._version != versions[k]]}
        if calls:
            reply["trace"] = wire.encode(calls, out)
        if call.calls:
            reply["local_trace"] = wire.encode(call.calls, out)
        if unwatched:
            reply["unwatched"] = True
        if call.optimizers:
            reply["optimizers"] = call.optimizer_states(out)
        if call.host:
            unmoved = instruments.finish_record(record)
            reply["unmoved"] = [] if unmoved is None else unmoved
            if unmoved is None:  # cleared or rewritten by the call: the check fails
                reply["unmoved_tampered"] = True
        if call.work:
            reply["work"] = work.as_data()
        if msg.get("tape") and isinstance(result, torch.Tensor) and result.requires_grad:
            module = self.objects[int(msg["push"][0][0])]
            inputs = [getattr(t, "wire_leaf", t) for t in tensors if t.requires_grad]
            self.tapes[len(self.tapes) + 1] = (result, inputs, list(module.parameters()))
            for old in sorted(self.tapes)[:-MAX_TAPES]:
                self.tapes[old] = None
            reply["tape"] = len(self.tapes)
        reply["value"] = wire.encode(result.detach() if isinstance(result, torch.Tensor)
                                     else result, out, self.tag)
        return reply, out

    def _play(self, machine) -> list:
        """Play the machine the grader describes ([CUDA, MPS] available) where it is not this
        one; what instruments.restore needs after the call."""
        if not isinstance(machine, list) or len(machine) != 2:
            return []
        wanted = [bool(machine[0]), bool(machine[1])]
        return [] if wanted == self.real_machine else instruments.play_machine(*wanted)

    def op_backward(self, msg, blobs):
        result, inputs, params = self.tapes[int(msg["tape"])]
        grad = wire.decode(msg["grad"], blobs)
        wanted = inputs + params
        grads = torch.autograd.grad(result, wanted, grad, allow_unused=True, retain_graph=True)
        out: list[bytes] = []
        return {"inputs": wire.encode(list(grads[:len(inputs)]), out),
                "params": wire.encode(list(grads[len(inputs):]), out)}, out

    def op_copy(self, msg, blobs):
        out: list[bytes] = []
        return {"value": wire.encode(copy.deepcopy(self.objects[int(msg["ref"])]), out,
                                     self.tag)}, out

    def serve(self) -> None:
        ops = {"init": self.op_init, "lookup": self.op_lookup, "call": self.op_call,
               "backward": self.op_backward, "copy": self.op_copy}
        while True:
            try:
                msg, blobs = wire.receive(self.reader)
            except EOFError:
                return
            op = ops.get(msg.get("op"))
            try:
                if op is None:
                    raise ValueError(f"unknown request {msg.get('op')!r}")
                reply, out = op(msg, blobs)
            except BaseException as e:  # noqa: BLE001 - reported to the grader as data
                reply, out = {"error": _error(e)}, []
            try:
                data = wire.pack(reply, out)
            except Exception as e:  # noqa: BLE001 - an answer that is not data
                data = wire.pack({"error": _error(e)}, [])
            self.writer.write(data)
            self.writer.flush()


def _watch(module, names: list, calls: list) -> list:
    """Forward hooks that record each call of the named submodules (the grader has hooks of its
    own there, e.g. to count the convolutions a forward pass runs)."""
    modules = dict(module.named_modules())
    handles = []
    for name in names:
        def record(m, inputs, output, name=name):
            calls.append((name, tuple(t.detach() for t in inputs if isinstance(t, torch.Tensor)),
                          output.detach() if isinstance(output, torch.Tensor) else None))
        if name in modules:
            handles.append(modules[name].register_forward_hook(record))
    return handles


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A copy of a recorded tensor as a plain tensor (no HostBatch bookkeeping), keeping
    whether it required gradients."""
    with torch._C.DisableTorchFunctionSubclass():
        copy_ = t.detach().clone().as_subclass(torch.Tensor)
    if t.requires_grad and copy_.is_floating_point():
        copy_.requires_grad_(True)
    return copy_


def _walk(value) -> list:
    if isinstance(value, list | tuple):
        return [x for v in value for x in _walk(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk(v)]
    return [value]


def _safe_repr(value) -> str:
    try:
        return repr(value)[:200]
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"


def _error(e: BaseException) -> dict:
    try:
        message = str(e)[:MAX_MESSAGE]
    except Exception:  # noqa: BLE001
        message = "<unprintable>"
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__, limit=-3))[-MAX_MESSAGE:]
    return {"type": type(e).__name__, "message": message, "traceback": tb}


def serve_kernel(path: str, namespace: dict) -> None:
    """In a graded kernel, after the notebook ran (grader.isolation.sandbox.SandboxedExecute.
    serve_verdict): connect to the grader's private socket and answer its requests on the
    notebook's own namespace until the grader hangs up. What student code prints meanwhile goes
    to /dev/null; the instruments are those the kernel installed before the first cell."""
    import socket

    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    channel.connect(path)
    reader = channel.makefile("rb", buffering=0)
    writer = channel.makefile("wb")
    saved = sys.stdout, sys.stderr
    null = open(os.devnull, "w")  # noqa: SIM115 - closed below
    sys.stdout = sys.stderr = null
    torch.set_num_threads(1)
    try:
        server = Server(reader, writer)
        server.ns = namespace
        server.real_machine = list(getattr(instruments, "BOOT_MACHINE", server.real_machine))
        server.serve()
    finally:
        sys.stdout, sys.stderr = saved
        null.close()
        channel.close()


def main() -> None:
    """Take the channel (fd 0 in, fd 1 out), then give student code /dev/null instead."""
    reader = os.fdopen(os.dup(0), "rb", buffering=0)
    writer = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    torch.set_num_threads(1)
    Server(reader, writer).serve()


if __name__ in ("__main__", "subject_server"):
    main()
