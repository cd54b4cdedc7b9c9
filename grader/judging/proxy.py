"""Trusted-side proxies of a subject's objects: checks run here on data the subject computed.

A contract function becomes a plain Python function that sends its arguments to the subject and
decodes the answer; a contract class becomes an nn.Module subclass whose instances mirror the
student's module tree (torch's own layers rebuilt here from their attributes, so isinstance,
modules(), named_parameters() and state_dict() behave) and whose forward runs in the subject,
through an autograd.Function so that backward works. Before each call the current values of the
proxies involved are pushed; after it, whatever the call changed (parameters, gradients, buffers,
train/eval mode, data attributes, tensors modified in place) is written back here.

Modules built here (the checks' reference modules) travel as data plus the instructor's source;
loaders, optimizers, the grader's hooks and the machine a check plays travel as descriptions
(grader.judging.described).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import signal
import subprocess
import threading
import time
import types

import torch
from torch import nn
from torch.utils.data import DataLoader

from grader.inside import instruments, wire
from grader.judging.described import Described

# exceptions the subject may raise "as themselves" (a ValueError stays a ValueError)
PASSED_EXCEPTIONS = {e.__name__: e for e in (
    ValueError, TypeError, RuntimeError, NotImplementedError, AssertionError, IndexError,
    KeyError, AttributeError, ZeroDivisionError, NameError, ArithmeticError, LookupError)}


# Text the student's code chose (an exception's message, a repr, a class or function name) is
# repeated by the grader only as a short escaped excerpt (student_text): a failure message can
# carry no more than this of it, whatever the code read or made up.
MAX_STUDENT_TEXT = 200
MAX_STUDENT_NAME = 80


def student_text(text: object, limit: int = MAX_STUDENT_TEXT) -> str:
    """`text` as the grader may repeat it: one line, non-ASCII and control characters escaped
    (a newline becomes \\n), at most `limit` characters (cut with "...")."""
    try:
        s = str(text)
    except Exception:  # noqa: BLE001 - an object of the grader's making cannot fail; be safe
        s = "<unprintable>"
    s = s[:4 * limit].encode("ascii", "backslashreplace").decode("ascii")
    s = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)
    return s if len(s) <= limit else s[:limit - 3] + "..."


class SubjectError(Exception):
    """The student's code raised an exception of a type that is not passed through as itself."""


class SubjectDied(BaseException):
    """The subject process died, broke the protocol or ran out of time: nothing more it says
    counts. A BaseException, so a check's `except Exception` cannot swallow it."""


class Opaque:
    """An object of the subject's that is not data (compares equal only to itself)."""

    def __init__(self, handle: int, type_name: str, text: str):
        self.handle, self.type_name, self.text = handle, type_name, text

    def __repr__(self) -> str:
        return f"<{self.type_name} from the student's code: {self.text}>"


# --------------------------------------------------------------------------- the process


STARTUP_SECONDS = 60  # a fresh subject's Python and torch imports, on a loaded machine


class SubjectProcess:
    """A started subject (argv: how; the caller builds the sandbox command) and its pipes."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, cwd=cwd,
                                        start_new_session=True)
        self.dead: str | None = None
        # Why it was stopped, for the submission's flags: "timeout" (a clock here ran out),
        # "protocol" (it sent something no honest subject sends), or what the caller names.
        self.stopped_for: set[str] = set()

    def kill(self, why: str = "stopped", kind: str | None = None) -> None:
        if self.dead is None:
            self.dead = why
            if kind is not None:
                self.stopped_for.add(kind)
        if self.process.poll() is None:
            try:
                import os
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.process.wait()

    def _timer(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(max(seconds, 0.0), self.kill,
                                args=(f"no answer within {max(seconds, 0.0):.0f} s", "timeout"))
        timer.daemon = True
        timer.start()
        return timer

    def exchange(self, header: dict, blobs: list[bytes], timeout: float, on_event=None,
                 first_timeout: float | None = None, max_events: int = 0,
                 deadline: float | None = None) -> tuple[dict, list[bytes]]:
        """Send one request and read its reply.

        Two clocks, neither of which the subject can move: the request's own limit, fixed when
        it is sent (`first_timeout` or `timeout`, plus `timeout` for each of the `max_events`
        progress events the request may bring: the init request's cells), and `deadline`
        (time.monotonic(): the submission's whole budget). A progress event (one per cell the
        subject starts) restarts only the per-cell clock of `timeout` seconds, and only
        `max_events` of them count: one more, or one that `on_event` refuses (it raises
        WireError), is a broken protocol. Replies are read with the reply caps of
        grader.inside.wire, so no answer can cost this process more than a few times
        MAX_REPLY_MESSAGE_BYTES."""
        if self.dead:
            raise SubjectDied(self.dead)
        limit = (first_timeout or timeout) + timeout * max_events
        if deadline is not None:
            limit = min(limit, deadline - time.monotonic())
        if limit <= 0:
            self.kill("the notebook's time limit was spent", "timeout")
            raise SubjectDied(self.dead)
        whole = self._timer(limit)  # never restarted
        timer = self._timer(first_timeout or timeout)
        events = 0
        try:
            wire.send(self.process.stdin, header, blobs)
            while True:
                reply, out = wire.receive(self.process.stdout,
                                          max_header=wire.MAX_REPLY_HEADER_BYTES,
                                          max_items=wire.MAX_REPLY_ITEMS,
                                          max_message=wire.MAX_REPLY_MESSAGE_BYTES)
                if "event" not in reply:
                    return reply, out
                events += 1
                if events > max_events:
                    raise wire.WireError(f"progress event {events} where {max_events} may come")
                if on_event is not None:  # it validates what the event says (else WireError)
                    on_event(reply)
                timer.cancel()
                timer = self._timer(timeout)
        except (wire.WireError, ValueError) as e:  # read whole, but not what may come
            self.kill(f"the student's process broke the grader's protocol ({str(e)[:300]})",
                      "protocol")
            raise SubjectDied(self.dead) from None
        except (OSError, EOFError) as e:
            self.kill(f"the student's process ended ({str(e)[:300]})")
            raise SubjectDied(self.dead) from None
        finally:
            timer.cancel()
            whole.cancel()


# --------------------------------------------------------------------------- proxies


class SubjectModule(nn.Module):
    """Base of the proxy classes (one per student class). Instances are built by the client."""

    _client: Client | None = None
    _class_handle = 0

    def __new__(cls, *args, **kwargs):  # ResidualBlock(6): construct it in the subject
        return cls._client.call({"$ref": cls._class_handle}, None, args, kwargs)

    def __init__(self, *args, **kwargs):  # already built by __new__
        pass

    def forward(self, *args, **kwargs):
        return self._client.forward(self, args, kwargs)

    def __deepcopy__(self, memo):
        twin = self._client.copy(self)
        wire.load_state(twin, wire.module_state(self))
        memo[id(self)] = twin
        return twin


SubjectModule.__module__ = "subject_proxy"  # not the grader's: checks look for grader modules


class _RemoteForward(torch.autograd.Function):
    """forward in the subject, with the subject's own autograd graph kept for backward."""

    @staticmethod
    def forward(ctx, client, module, args, kwargs, n_inputs, *tensors):
        value, tape = client.call_module(module, args, kwargs, grad=True)
        if not isinstance(value, torch.Tensor):
            raise SubjectError(f"forward returned a {type(value).__name__}; a tensor is needed "
                               "when gradients are tracked")
        ctx.client, ctx.tape, ctx.n_inputs, ctx.n_all = client, tape, n_inputs, len(tensors)
        return value

    @staticmethod
    def backward(ctx, grad):
        none = (None,) * 5
        if ctx.tape is None:
            return none + (None,) * ctx.n_all
        inputs, params = ctx.client.backward(ctx.tape, grad)
        return none + tuple(inputs) + tuple(params)


def _tensors_in(value) -> list:
    if isinstance(value, list | tuple):
        return [x for v in value for x in _tensors_in(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _tensors_in(v)]
    return [value] if isinstance(value, torch.Tensor) else []


class Client:
    """Requests to one subject, and the proxies of its objects."""

    def __init__(self, process: SubjectProcess, timeout: float, deadline: float | None = None):
        # timeout: seconds per request; deadline (time.monotonic()): the submission's end
        self.process, self.timeout, self.deadline = process, timeout, deadline
        self.objects: dict[int, object] = {}  # subject handle -> proxy here
        self.handle_of: dict[int, int] = {}  # id(proxy) -> subject handle
        self.classes: dict[int, type] = {}

    # ----------------------------------------------------------------- plumbing

    def request(self, header: dict, blobs: list[bytes] | None = None, on_event=None,
                first_timeout: float | None = None, max_events: int | None = None):
        if max_events is None:  # one progress event per cell an init request sends, else none
            cells = header.get("cells") if header.get("op") == "init" else None
            max_events = len(cells) if isinstance(cells, list) else 0
        reply, out = self.process.exchange(header, blobs or [], self.timeout, on_event,
                                           first_timeout, max_events, self.deadline)
        if "error" in reply:
            raise _exception(reply["error"])
        return reply, out

    def _remember(self, handle: int, obj) -> None:
        self.objects[handle] = obj
        self.handle_of[id(obj)] = handle

    def proxy_class(self, handle: int, info: dict) -> type:
        if handle not in self.classes:
            name = student_text(str(info.get("name", "StudentModule")).rsplit(".", 1)[-1],
                                MAX_STUDENT_NAME) or "StudentModule"
            cls = type(name, (SubjectModule,), {
                "__module__": student_text(info.get("module", ""), MAX_STUDENT_NAME),
                "__qualname__": name,
                "_client": self, "_class_handle": handle,
                "__subject_library_references__": [str(r) for r in info.get("lib", [])]})
            self.classes[handle] = cls
            self._remember(handle, cls)
        return self.classes[handle]

    def proxy_function(self, handle: int, info: dict):
        if handle in self.objects:
            return self.objects[handle]
        call = self.call

        def function(*args, **kwargs):
            return call({"$ref": handle}, None, args, kwargs)

        function.__name__ = function.__qualname__ = student_text(info.get("name", "function"),
                                                                 MAX_STUDENT_NAME)
        function.__module__ = student_text(info.get("module", ""), MAX_STUDENT_NAME)
        function.__subject_library_references__ = [str(r) for r in info.get("lib", [])]
        self._remember(handle, function)
        return function

    def _factory(self, node: dict):
        if node.get("std") is not None:
            if node["std"] not in wire.STANDARD_MODULES:
                raise SubjectDied(f"unknown module type {node['std']!r}")
            return wire.empty_module(wire.STANDARD_MODULES[node["std"]]), True
        if node.get("h") in self.objects:
            return self.objects[node["h"]], False
        module = wire.empty_module(self.proxy_class(int(node["cls"]), node))
        self._remember(int(node["h"]), module)
        return module, True

    def unhook(self, made: dict):
        def unhook(tree: dict, blobs: list[bytes]):
            if "$obj" in tree:
                handle = int(tree["$obj"])
                if handle in made:
                    return made[handle]
                if handle in self.objects:
                    return self.objects[handle]
                module = wire.build(wire.decode(tree["tree"], blobs, unhook), self._factory)
                self._remember(handle, module)
                return module
            if "$cls" in tree:
                return self.proxy_class(int(tree["$cls"]), tree)
            if "$fn" in tree:
                return self.proxy_function(int(tree["$fn"]), tree)
            if "$opaque" in tree:
                return Opaque(int(tree["$opaque"]),
                              student_text(tree.get("type"), MAX_STUDENT_NAME),
                              student_text(tree.get("repr"), MAX_STUDENT_NAME))
            raise wire.WireError(f"unknown tag {sorted(tree)[:3]}")
        return unhook

    def hook(self, pushed: list, sent: Described):
        def node_hook(module):
            handle = self.handle_of.get(id(module))
            if isinstance(module, SubjectModule) and handle is not None:
                if module not in pushed:
                    pushed.append(module)
                return {"ref": handle}
            node = sent.module_node(module)  # the grader's hooks: traced, or run there
            if "std" not in node and wire.standard_name(module) is None:
                node.update({"src": source_bundle(type(module)),
                             "module": type(module).__module__,
                             "name": type(module).__qualname__})
            return node or None

        def hook(value, blobs):
            if isinstance(value, nn.Module):
                node = node_hook(value)
                if node is not None and "ref" in node:
                    return {"$ref": node["ref"]}
                sent.local.append(value)
                return {"$new": wire.encode(wire.describe(value, node_hook), blobs)}
            if isinstance(value, type | types.FunctionType) and id(value) in self.handle_of:
                return {"$ref": self.handle_of[id(value)]}
            if isinstance(value, Opaque):
                return {"$ref": value.handle}
            if isinstance(value, DataLoader):
                return {"$loader": sent.loader(value, blobs)}
            if isinstance(value, torch.optim.Optimizer):
                return {"$opt": sent.optimizer(value, blobs)}
            return None
        return hook

    # ----------------------------------------------------------------- requests

    def lookup(self, name: str):
        reply, out = self.request({"op": "lookup", "name": name})
        if reply.get("missing"):
            raise KeyError(name)
        return _bounded(wire.decode(reply["value"], out, self.unhook({})))

    def call(self, target, method, args, kwargs, grad=None, tape=False, pushed=None):
        """Call a function/class (target {"$ref": h}) or a module's method in the subject."""
        value, _ = self._call(target, method, args, kwargs,
                              torch.is_grad_enabled() if grad is None else grad, tape,
                              pushed or [])
        return _bounded(value)

    def _call(self, target, method, args, kwargs, grad, tape, pushed):
        blobs: list[bytes] = []
        sent = Described()
        local = sent.local
        hook = self.hook(pushed, sent)
        # submodules of a module's forward that have hooks here: the subject reports their calls
        # (forward hooks and forward pre-hooks: checks use both to see the order of calls)
        watched = {name: m for name, m in pushed[0].named_modules()
                   if m._forward_hooks or m._forward_pre_hooks} if method == "forward" else {}
        header = {"op": "call", "method": method, "grad": grad, "tape": tape,
                  "trace": sorted(watched), "machine": instruments.machine(),
                  "target": wire.encode(target, blobs, hook) if not isinstance(target, dict)
                  else target,
                  "args": wire.encode(tuple(args), blobs, hook),
                  "kwargs": wire.encode(dict(kwargs), blobs, hook)}
        header["push"] = [[self.handle_of[id(m)], wire.encode(wire.module_state(m), blobs)]
                          for m in pushed]
        try:
            reply, out = self.request(header, blobs)
        except Exception as e:
            if subject_exception(e) is not None:  # which call raised it, for the message
                e.subject_call = self._call_name(target, method)
            raise
        try:
            made = dict(zip([int(h) for h in reply["made"]], local, strict=True))
            for module, state in zip(pushed + local, reply["after"], strict=True):
                wire.load_state(module, wire.decode(state, out))
            tensors = _tensors_in(args) + _tensors_in(kwargs)
            with torch.no_grad():
                for index, value in reply["mutated"]:
                    if type(index) is not int or not 0 <= index < len(tensors):
                        raise IndexError(f"no argument tensor {str(index)[:20]} was sent")
                    changed = wire.decode(value, out)
                    if not isinstance(changed, torch.Tensor):
                        raise TypeError(f"argument tensor {index} came back as no tensor")
                    if tensors[index].shape == changed.shape:
                        tensors[index].copy_(changed)
            for name, inputs, output in wire.decode(reply.get("trace", {"$l": []}), out):
                module = watched[name]  # replay: the hooks here see the subject's call
                for pre_hook in list(module._forward_pre_hooks.values()):
                    pre_hook(module, inputs)
                for forward_hook in list(module._forward_hooks.values()):
                    forward_hook(module, inputs, output)
            sent.apply(reply, out)  # optimizers, host batches, the grader's hooks on its modules
            return wire.decode(reply["value"], out, self.unhook(made)), reply.get("tape")
        except (KeyError, IndexError, TypeError, ValueError) as e:
            self.process.kill(f"the student's process answered nonsense ({str(e)[:300]!r})",
                              "protocol")
            raise SubjectDied(self.process.dead) from None

    def _call_name(self, target, method) -> str:
        """How a failure message names the call: the function's or the class's name."""
        if isinstance(target, dict):
            target = self.objects.get(int(target.get("$ref", -1)))
        owner = target if isinstance(target, type | types.FunctionType) else type(target)
        name = getattr(owner, "__qualname__", "your code")
        return f"{name}.{method}" if method else name

    def call_module(self, module, args, kwargs, grad):
        return self._call(module, "forward", args, kwargs, grad, grad, [module])

    def forward(self, module: SubjectModule, args, kwargs):
        inputs = [t for t in _tensors_in(args) + _tensors_in(kwargs) if t.requires_grad]
        params = list(module.parameters())
        if not torch.is_grad_enabled() or not (inputs or any(p.requires_grad for p in params)):
            return self.call_module(module, args, kwargs, grad=False)[0]
        return _RemoteForward.apply(self, module, args, kwargs, len(inputs), *inputs, *params)

    def backward(self, tape: int, grad: torch.Tensor):
        blobs: list[bytes] = []
        header = {"op": "backward", "tape": tape, "grad": wire.encode(grad, blobs)}
        reply, out = self.request(header, blobs)
        return wire.decode(reply["inputs"], out), wire.decode(reply["params"], out)

    def copy(self, module: SubjectModule):
        reply, out = self.request({"op": "copy", "ref": self.handle_of[id(module)]})
        return wire.decode(reply["value"], out, self.unhook({}))


def _exception(error: dict) -> BaseException:
    """The student's exception, raised here: its type where it is a common one, its message an
    excerpt (student_text). Marked `from_subject`, with `subject_text` ("Type: message") for
    grader.judging.verdict's failure message."""
    kind = student_text(error.get("type", "Exception"), MAX_STUDENT_NAME)
    message = student_text(error.get("message", ""))
    e = (PASSED_EXCEPTIONS[kind](message) if kind in PASSED_EXCEPTIONS
         else SubjectError(f"{kind}: {message}"))
    e.from_subject = True
    e.subject_text = f"{kind}: {message}"
    return e


def _bounded(value, depth: int = 0):
    """A returned value with every string in it (in lists, tuples, dicts) cut to an excerpt of
    MAX_STUDENT_TEXT characters: no contract function returns text, and a check that shows
    what came back must not repeat more of it than that."""
    if isinstance(value, str):
        return value if len(value) <= MAX_STUDENT_TEXT else value[:MAX_STUDENT_TEXT] + "..."
    if depth > 20:
        return value
    if isinstance(value, list | tuple) and type(value) in (list, tuple):
        return type(value)(_bounded(v, depth + 1) for v in value)
    if type(value) is dict:
        return {_bounded(k, depth + 1): _bounded(v, depth + 1) for k, v in value.items()}
    return value


def subject_exception(e: BaseException) -> str | None:
    """'Type: message' (an excerpt) when `e` is an exception the student's code raised in the
    subject, else None."""
    text = getattr(e, "subject_text", None)
    return text if getattr(e, "from_subject", False) and isinstance(text, str) else None


# --------------------------------------------------------------------------- instructor source


def source_bundle(cls: type) -> str:
    """Source text that defines `cls` in a fresh namespace: the class, the functions and classes
    of its own module (or the grader's) that it uses, and imports for the rest."""
    module = inspect.getmodule(cls)
    env = vars(module) if module is not None else {}
    parts: list[str] = []
    imports: list[str] = []
    done: set[str] = set()

    def need(obj_name: str, obj) -> None:
        if obj_name in done:
            return
        done.add(obj_name)
        src = inspect.getsource(obj)
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in env and node.id not in done \
                    and not hasattr(builtins, node.id):
                value = env[node.id]
                if isinstance(value, types.ModuleType):
                    done.add(node.id)
                    imports.append(f"import {value.__name__} as {node.id}")
                elif isinstance(value, type | types.FunctionType):
                    home = getattr(value, "__module__", "") or ""
                    if home == cls.__module__ or home.startswith("grader."):
                        need(node.id, value)
                    else:
                        done.add(node.id)
                        imports.append(f"from {home} import {value.__qualname__} as {node.id}")
        parts.append(src)

    need(cls.__qualname__, cls)
    return "\n".join(["from __future__ import annotations", *imports, "", *parts])
