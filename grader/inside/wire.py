"""The wire between the trusted grader and a sandboxed subject process: data only, never pickle.

A message is a JSON header plus raw tensor bytes:

    8-byte big-endian header length | header (UTF-8 JSON) | blob 0 | blob 1 | ...

The header lists each blob's size under "sizes". Values inside a header are JSON with tagged
objects for what JSON lacks: {"$t": [...]} tuple, {"$l": [...]} list, {"$d": [[k, v], ...]} dict,
{"$T": i, "dtype": "float32", "shape": [...], "rg": bool} tensor (bytes in blob i),
{"$dev": "cpu"} device, {"$dt": "float32"} dtype, {"$np": "<f4", "v": 1.5} numpy scalar.
Everything else (modules, opaque objects) is tagged by the caller through `hook(value, blobs)`
and `unhook(tag, blobs)`.

This file is imported by the trusted side and also sent as source text into the subject (which
cannot import the grader), so it depends on nothing but the standard library and torch.
"""

from __future__ import annotations

import ctypes
import json
import struct
import weakref

import torch

MAX_MESSAGE_BYTES = 512 * 1024**2  # one message: header + tensors (a ResNet-110 is ~7 MB)
MAX_HEADER_BYTES = 64 * 1024**2  # a request the grader sends (the cells' source text is in it)
# What the trusted side accepts from the subject, which is the student's to forge. A JSON
# header costs the parser up to ~30 bytes of Python objects per byte (a 63 MiB one took the
# grader 2.1 GB and 34 s), so a reply's header is capped near the largest honest one, and the
# brackets, commas and colons in it (a bound on the JSON values it holds) are counted before it
# is parsed. Bulk data travels as blobs, which cost their own size (twice: read, then the
# tensor's copy). The largest honest replies over the five solutions' verdicts: header 181 kB
# with 31,770 such characters (ex4's ResNet-110 state), whole message 7.1 MB (ex4).
MAX_REPLY_HEADER_BYTES = 1024**2
MAX_REPLY_ITEMS = 200_000
MAX_REPLY_MESSAGE_BYTES = 64 * 1024**2
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
    torch.int16, torch.int8, torch.uint8, torch.bool)}


class WireError(ValueError):
    """A message that breaks the protocol (size, framing, JSON, an unknown tag or dtype)."""


# --------------------------------------------------------------------------- tensors


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Raw bytes of a tensor (C order), without numpy (a student may have broken numpy)."""
    t = t.detach().to("cpu").contiguous()
    n = t.numel() * t.element_size()
    return ctypes.string_at(t.data_ptr(), n) if n else b""


def tensor_from(data: bytes, dtype_name: str, shape: list) -> torch.Tensor:
    if dtype_name not in DTYPES:
        raise WireError(f"unknown dtype {dtype_name!r}")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise WireError(f"bad shape {shape!r}")
    dtype = DTYPES[dtype_name]
    numel = 1
    for s in shape:
        numel *= s
    if numel * torch.empty((), dtype=dtype).element_size() != len(data):
        raise WireError(f"{len(data)} bytes do not make a {dtype_name} tensor of shape {shape}")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    # bytearray: a private, writable copy the tensor keeps (no second copy by clone)
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)


# --------------------------------------------------------------------------- values


def encode(value, blobs: list[bytes], hook=None):
    """A Python value -> JSON-able tree; tensors go to `blobs`; `hook(value)` tags the rest."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and type(value) is int:
        return value
    if isinstance(value, float) and type(value) is float:
        return value
    if isinstance(value, torch.Tensor):
        if str(value.dtype).removeprefix("torch.") not in DTYPES:
            raise TypeError(f"tensor dtype {value.dtype} cannot cross the wire")
        blobs.append(tensor_bytes(value))
        return {"$T": len(blobs) - 1, "dtype": str(value.dtype).removeprefix("torch."),
                "shape": list(value.shape), "rg": bool(value.requires_grad),
                "leaf": bool(value.is_leaf)}
    if type(value) is tuple:
        return {"$t": [encode(v, blobs, hook) for v in value]}
    if type(value) is list:
        return {"$l": [encode(v, blobs, hook) for v in value]}
    if type(value) is dict:
        return {"$d": [[encode(k, blobs, hook), encode(v, blobs, hook)] for k, v in value.items()]}
    if isinstance(value, torch.device):
        return {"$dev": str(value)}
    if isinstance(value, torch.dtype):
        return {"$dt": str(value).removeprefix("torch.")}
    numpy_scalar = _numpy_scalar(value)
    if numpy_scalar is not None:
        return numpy_scalar
    if hook is not None:
        tagged = hook(value, blobs)
        if tagged is not None:
            return tagged
    raise TypeError(f"a {type(value).__name__} cannot cross the wire")


def _numpy_scalar(value):
    module = type(value).__module__
    if module != "numpy" or not hasattr(value, "dtype") or getattr(value, "shape", None) != ():
        return None
    if value.dtype.kind not in "biuf":
        return None
    return {"$np": value.dtype.str, "v": value.item()}


def decode(tree, blobs: list[bytes], unhook=None):
    """The inverse of `encode`; `unhook(tag_dict)` rebuilds what `hook` tagged."""
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree
    if isinstance(tree, list):
        raise WireError("bare JSON list (lists are tagged $l)")
    if not isinstance(tree, dict):
        raise WireError(f"unexpected JSON value {type(tree).__name__}")
    if "$T" in tree:
        index = tree["$T"]
        if type(index) is not int or not 0 <= index < len(blobs):
            raise WireError(f"tensor blob {str(index)[:20]} does not exist")
        if blobs[index] is None:  # encode makes a blob per tensor: named twice, a copy each
            raise WireError(f"tensor blob {index} named twice")
        t = tensor_from(blobs[index], tree.get("dtype"), tree.get("shape"))
        blobs[index] = None  # used up (and its bytes freed once the tensor holds its copy)
        if tree.get("rg") and t.is_floating_point():
            t.requires_grad_(True)
            if tree.get("leaf") is False:  # an intermediate result there: in-place ops allowed
                inner = t.clone()
                inner.wire_leaf = t  # gradients are taken with respect to the value sent
                return inner
        return t
    if "$t" in tree:
        return tuple(decode(v, blobs, unhook) for v in _items(tree["$t"]))
    if "$l" in tree:
        return [decode(v, blobs, unhook) for v in _items(tree["$l"])]
    if "$d" in tree:
        out = {}
        for pair in _items(tree["$d"]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("dict entries are [key, value] pairs")
            out[decode(pair[0], blobs, unhook)] = decode(pair[1], blobs, unhook)
        return out
    if "$dev" in tree:
        return torch.device(str(tree["$dev"]))
    if "$dt" in tree:
        if tree["$dt"] not in DTYPES:
            raise WireError(f"unknown dtype {tree['$dt']!r}")
        return DTYPES[tree["$dt"]]
    if "$np" in tree:
        import numpy as np  # the trusted side: numpy is whole there
        dtype = np.dtype(str(tree["$np"]))
        if dtype.kind not in "biuf":
            raise WireError(f"numpy dtype {dtype} refused")
        return dtype.type(tree["v"])
    if unhook is not None:
        return unhook(tree, blobs)
    raise WireError(f"unknown tag in {sorted(tree)[:3]}")


def _items(value) -> list:
    if not isinstance(value, list):
        raise WireError("tagged container without a list")
    return value


# --------------------------------------------------------------------------- framing


def pack(header: dict, blobs: list[bytes]) -> bytes:
    header = {**header, "sizes": [len(b) for b in blobs]}
    text = json.dumps(header, allow_nan=True).encode()
    return b"".join([struct.pack(">Q", len(text)), text, *blobs])


def send(stream, header: dict, blobs: list[bytes] | None = None) -> None:
    stream.write(pack(header, blobs or []))
    stream.flush()


def _read_exactly(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(stream, max_header: int = MAX_HEADER_BYTES, max_items: int | None = None,
            max_message: int = MAX_MESSAGE_BYTES) -> tuple[dict, list[bytes]]:
    """One message: (header, blobs). Sizes are checked before anything is allocated; with
    `max_items`, the header's bracket, comma and colon count before it is parsed (a bound on
    the objects the parser can make, whatever the text)."""
    (length,) = struct.unpack(">Q", _read_exactly(stream, 8))
    if length > max_header:
        raise WireError(f"header of {length} bytes is too large (at most {max_header})")
    text = _read_exactly(stream, length)
    if max_items is not None:
        items = sum(text.count(c) for c in (b"[", b"{", b",", b":"))
        if items > max_items:
            raise WireError(f"header with up to {items} JSON values is too large "
                            f"(at most {max_items})")
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise WireError(f"header is not JSON: {str(e)[:200]}") from None
    del text
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    sizes = header.pop("sizes", [])
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes):
        raise WireError("bad blob sizes")
    if sum(sizes) + length > max_message:
        raise WireError(f"message of {sum(sizes) + length} bytes is too large "
                        f"(at most {max_message})")
    return header, [_read_exactly(stream, s) for s in sizes]


# --------------------------------------------------------------------------- module types

def _standard_modules() -> dict[str, type]:
    """torch.nn classes whose forward is torch's own: both sides rebuild them from attributes."""
    nn = torch.nn
    classes = [nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm,
               nn.GroupNorm, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Softmax,
               nn.Identity, nn.Flatten, nn.Dropout, nn.AdaptiveAvgPool2d, nn.AvgPool2d,
               nn.MaxPool2d, nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Embedding,
               nn.CrossEntropyLoss, nn.NLLLoss, nn.MSELoss]  # losses a request may pass
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


STANDARD_MODULES = _standard_modules()
# what a bare nn.Module keeps in __dict__: not copied as "attributes" of a module
MODULE_INTERNALS = frozenset(torch.nn.Module().__dict__) - {"training"}


def standard_name(module: torch.nn.Module, ignore_hooks: bool = False) -> str | None:
    """The allow-list name of a module whose behaviour is torch's own, else None (its forward,
    hooks or class are someone's code). ignore_hooks: the caller deals with the hooks."""
    cls = type(module)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if STANDARD_MODULES.get(name) is not cls or "forward" in module.__dict__:
        return None
    if not ignore_hooks and (module._forward_hooks or module._forward_pre_hooks
                             or module._backward_hooks):
        return None
    return name


def plain_attributes(module: torch.nn.Module) -> dict:
    """The module's own data attributes (sizes, strides, padding, training), wire-encodable."""
    out = {}
    for key, value in module.__dict__.items():
        if key in MODULE_INTERNALS:
            continue
        try:
            encode(value, [], None)
        except TypeError:
            continue
        if isinstance(value, torch.Tensor):
            continue
        out[key] = value
    return out


# --------------------------------------------------------------------------- module trees


def describe(module: torch.nn.Module, hook, _seen: dict | None = None, _path: str = "",
             functions: bool = False) -> dict:
    """A module tree as data: {"std", "attrs", "params", "buffers", "children"} per node, plus
    what `hook(node_module)` adds (handles, class ids). A hook result with "ref" ends the walk
    there: the other side already holds that object. A module met again (one layer under two
    names) is {"alias": path of its first place}. functions=True (the subject describing the
    student's modules) adds "fns": the attributes that hold functions (a `shortcut` that is a
    plain function, a bound method, a partial), left as objects for `encode`'s hook to tag."""
    seen = {} if _seen is None else _seen
    if id(module) in seen:
        return {"alias": seen[id(module)]}
    seen[id(module)] = _path
    extra = hook(module) or {}
    if "ref" in extra:
        return extra
    node = {"std": standard_name(module), "attrs": plain_attributes(module),
            "params": dict(module._parameters), "buffers": dict(module._buffers),
            "children": [[name, describe(child, hook, seen, f"{_path}.{name}" if _path else name,
                                         functions)]
                         for name, child in module._modules.items() if child is not None]}
    if functions:
        fns = function_attributes(module)
        if fns:
            node["fns"] = fns
    node.update(extra)
    return node


def function_attributes(module: torch.nn.Module) -> dict:
    """The module's own attributes that hold something callable other than a module or tensor
    (the contract allows a shortcut that is "a module (or function)")."""
    return {key: value for key, value in module.__dict__.items()
            if key not in MODULE_INTERNALS and isinstance(key, str) and callable(value)
            and not isinstance(value, torch.nn.Module | torch.Tensor)}


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or "." in name or name.startswith("__"):
        raise WireError(f"bad member name {name!r}")
    return name


def build(node: dict, factory, _made: dict | None = None, _path: str = "") -> torch.nn.Module:
    """The inverse of `describe`: `factory(node)` gives (module, fill); fill=False means an
    existing object (a "ref"), used as it is; else the node's members are put into it."""
    made = {} if _made is None else _made
    if not isinstance(node, dict):
        raise WireError("a module node must be a dict")
    if "alias" in node:
        if node["alias"] not in made:
            raise WireError(f"alias of an unknown module {node['alias']!r}")
        return made[node["alias"]]
    module, fill = factory(node)
    made[_path] = module
    if not fill:
        return module
    for key, value in dict(node.get("attrs", {})).items():
        if _check_name(key) in MODULE_INTERNALS or callable(value):
            raise WireError(f"attribute {key!r} refused")
        module.__dict__[key] = value
    for key, value in dict(node.get("fns", {})).items():  # decoded by the caller's unhook
        if _check_name(key) in MODULE_INTERNALS or not callable(value) \
                or isinstance(value, torch.nn.Module):
            raise WireError(f"function attribute {key!r} refused")
        module.__dict__[key] = value
    for name, t in dict(node.get("params", {})).items():
        if t is not None and not isinstance(t, torch.Tensor):
            raise WireError(f"parameter {name!r} is not a tensor")
        module._parameters[_check_name(name)] = None if t is None else torch.nn.Parameter(
            t.detach(), requires_grad=t.requires_grad)
    for name, t in dict(node.get("buffers", {})).items():
        if t is not None and not isinstance(t, torch.Tensor):
            raise WireError(f"buffer {name!r} is not a tensor")
        module._buffers[_check_name(name)] = t
    for name, child in node.get("children", []):
        path = f"{_path}.{_check_name(name)}" if _path else name
        module._modules[name] = build(child, factory, made, path)
    return module


def empty_module(cls: type) -> torch.nn.Module:
    """An instance of `cls` with nn.Module's bookkeeping only (its __init__ is not run)."""
    module = object.__new__(cls)
    torch.nn.Module.__init__(module)
    return module


# --------------------------------------------------------------------------- state


def module_state(module: torch.nn.Module, param_ids: dict | None = None,
                 hooks: bool = False) -> dict:
    """Everything a call may change in a module tree, by qualified name. hooks=True (the
    subject's answer) adds how many forward pre-hooks and forward hooks each module holds, so
    the grader sees hooks a student's function left behind (see load_state)."""
    state = {"params": {}, "grads": {}, "rg": {}, "buffers": {}, "training": {}, "attrs": {},
             "replaced": []}
    if hooks:
        state["hooks"] = {name: [len(m._forward_pre_hooks), len(m._forward_hooks)]
                          for name, m in module.named_modules(remove_duplicate=False)
                          if m._forward_pre_hooks or m._forward_hooks}
    for name, p in module.named_parameters(remove_duplicate=False):
        state["params"][name] = p.detach()
        state["grads"][name] = None if p.grad is None else p.grad.detach()
        state["rg"][name] = bool(p.requires_grad)
        if param_ids is not None and param_ids.get(name) != id(p):
            state["replaced"].append(name)
    for name, b in module.named_buffers(remove_duplicate=False):
        state["buffers"][name] = b
    for name, m in module.named_modules(remove_duplicate=False):
        state["training"][name] = bool(m.training)
        attrs = {k: v for k, v in plain_attributes(m).items() if k != "training"}
        if attrs:
            state["attrs"][name] = attrs
    return state


# module -> handles of the do-nothing hooks that stand for hooks the subject's copy holds
_STAND_INS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _noop_pre_hook(module, inputs):
    return None


def _noop_hook(module, inputs, output):
    return None


def _mirror_hooks(modules: dict, counts: dict) -> None:
    """Give each module as many do-nothing pre-hooks/hooks as the subject's copy holds (hooks
    the student's code registered and left), besides the grader's own hooks, which stay."""
    for name, m in modules.items():
        for handle in _STAND_INS.pop(m, []):
            handle.remove()
        n_pre, n_post = (int(n) for n in counts.get(name, (0, 0)))
        handles = [m.register_forward_pre_hook(_noop_pre_hook) for _ in range(min(n_pre, 64))]
        handles += [m.register_forward_hook(_noop_hook) for _ in range(min(n_post, 64))]
        if handles:
            _STAND_INS[m] = handles


def param_ids(module: torch.nn.Module) -> dict:
    return {n: id(p) for n, p in module.named_parameters(remove_duplicate=False)}


def _owner(module: torch.nn.Module, qualified: str):
    *path, leaf = qualified.split(".")
    for part in path:
        module = module._modules[part]
    return module, leaf


def load_state(module: torch.nn.Module, state: dict, set_attrs: bool = True) -> None:
    """Put `state` (from module_state) into `module` in place: existing Parameter objects keep
    their identity unless the other side replaced them (then a new Parameter is set)."""
    params = dict(module.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, value in state.get("params", {}).items():
            if name not in params:
                raise WireError(f"the module has no parameter {name!r}")
            owner, leaf = _owner(module, name)
            if name in state.get("replaced", []):
                owner._parameters[leaf] = torch.nn.Parameter(value.clone())
                p = owner._parameters[leaf]
            else:
                p = params[name]
                if p.shape != value.shape:
                    owner._parameters[leaf] = p = torch.nn.Parameter(value.clone())
                elif not torch.equal(p, value.to(p.dtype)):
                    p.copy_(value)
            p.requires_grad_(bool(state.get("rg", {}).get(name, p.requires_grad)))
            if "grads" in state:
                grad = state["grads"].get(name)
                p.grad = None if grad is None else grad.clone()
        buffers = dict(module.named_buffers(remove_duplicate=False))
        for name, value in state.get("buffers", {}).items():
            owner, leaf = _owner(module, name)
            if name in buffers and value is not None and buffers[name].shape == value.shape \
                    and buffers[name].dtype == value.dtype:
                if not torch.equal(buffers[name], value):
                    buffers[name].copy_(value)
            else:
                owner._buffers[leaf] = value
    modules = dict(module.named_modules(remove_duplicate=False))
    if "hooks" in state:
        _mirror_hooks(modules, state["hooks"])
    for name, training in state.get("training", {}).items():
        if name in modules:
            modules[name].training = bool(training)
    if set_attrs:
        for name, attrs in state.get("attrs", {}).items():
            if name in modules:
                for key, value in attrs.items():
                    if _check_name(key) not in MODULE_INTERNALS and not callable(value):
                        modules[name].__dict__[key] = value
