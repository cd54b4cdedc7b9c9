"""Shared helpers for hidden tests.

Hidden-test cells call functions in ``grader.checks.exN`` with the student's objects. Those
functions use the helpers here so that every check:

* is seeded from fresh randomness each run (a submission cannot be tuned to one seed),
* compares against a reference computed now, on this machine (never stored floats),
* fails with a message that says what was observed and what was expected,
* refuses objects that merely come from the course library instead of the student's own code.
"""

from __future__ import annotations

import contextlib
import dis
import io
import os
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from grader.bridge.course import COURSE_PACKAGES

# Modules whose objects a student must not hand in as their own implementation (the one rule
# on the course packages, grader.bridge.course).
FORBIDDEN_MODULE_PREFIXES = COURSE_PACKAGES


class CheckFailure(AssertionError):
    """A hidden test failed; the message is shown to the student in the feedback."""


def fail(what: str, observed: object, expected: object) -> None:
    raise CheckFailure(f"{what}\n  observed: {observed}\n  expected: {expected}")


def expect(condition: bool, what: str, observed: object, expected: object) -> None:
    if not condition:
        fail(what, observed, expected)


def fresh_seed() -> int:
    """A seed drawn from the OS; also seeds torch so the check's inputs differ each run."""
    seed = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(seed)
    return seed


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG at `seed`, restoring the previous state after."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def expect_close(actual: torch.Tensor, expected: torch.Tensor, what: str,
                 atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Compare tensors; on failure report shapes or the largest difference."""
    if not isinstance(actual, torch.Tensor):
        fail(f"{what}: wrong type", type(actual).__name__, "torch.Tensor")
    if tuple(actual.shape) != tuple(expected.shape):
        fail(f"{what}: wrong shape", tuple(actual.shape), tuple(expected.shape))
    actual = actual.detach().to(expected.dtype)
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol):
        gap = (actual - expected).abs().flatten()
        worst = int(gap.argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape))
        fail(f"{what}: values differ from the reference (largest difference "
             f"{gap[worst].item():.3g} at index {index})",
             f"{_preview(actual)}; at {index}: {actual.flatten()[worst].item():.4g}",
             f"{_preview(expected)}; at {index}: {expected.flatten()[worst].item():.4g}")


def _preview(t: torch.Tensor, n: int = 4) -> str:
    flat = t.detach().flatten()[:n].tolist()
    return "[" + ", ".join(f"{v:.4g}" for v in flat) + (", ...]" if t.numel() > n else "]")


def defined_in_library(obj: object) -> str | None:
    """Return the library module `obj` (or its class) comes from, or None if it is the student's."""
    candidates = [obj, type(obj)]
    for candidate in candidates:
        module = getattr(candidate, "__module__", None) or ""
        if module.split(".")[0] in FORBIDDEN_MODULE_PREFIXES:
            return module
    return None


def expect_own_implementation(obj: object, name: str) -> None:
    """Fail when `obj` (a function, class or module instance) comes from the course library."""
    module = defined_in_library(obj)
    if module is not None:
        fail(f"{name} must be implemented in this notebook, not imported",
             f"an object from {module}", "your own definition")
    if isinstance(obj, torch.nn.Module):
        for sub in obj.modules():
            module = defined_in_library(sub)
            if module is not None:
                fail(f"{name} must be built from your own code, not the course library",
                     f"a submodule {type(sub).__name__} from {module}", "your own layers")
    target = type(obj) if isinstance(obj, torch.nn.Module) else obj
    used = library_references(target)
    if used:
        fail(f"{name} must not use the course library (resnet_course) or the grader",
             f"your code uses {used[0]}", "your own implementation")


# --- helpers added for the exercise checks (ex1-ex3); the ones above keep their behaviour ---

def randint(low: int, high: int) -> int:
    """A random int in [low, high] from torch's RNG (seeded by fresh_seed)."""
    return int(torch.randint(low, high + 1, ()).item())


@contextmanager
def quiet() -> Iterator[None]:
    """Run student code with warnings and stderr swallowed: a warning must not zero a test cell."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def expect_value_error(call, what: str, reason: str) -> None:
    """`call()` must raise ValueError; `what` names the call, `reason` says why it is invalid."""
    try:
        with quiet():
            call()
    except ValueError:
        return
    except Exception as error:  # any other exception is the wrong kind
        fail(f"{what} should raise ValueError ({reason})", f"{type(error).__name__}: {error}",
             "ValueError")
    fail(f"{what} should raise ValueError ({reason})", "no exception", "ValueError")


def linear_layers(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """Every nn.Linear inside `model`, in registration order."""
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's state (parameters and buffers)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    """True when the model's state equals a `snapshot` taken earlier."""
    now = model.state_dict()
    return set(now) == set(before) and all(torch.equal(now[k], v) for k, v in before.items())


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize_(model: torch.nn.Module) -> torch.nn.Module:
    """Fresh random weights for Linear/Conv layers and BatchNorm affine params and statistics.

    Works in place on the module it is given (hand it a deepcopy of the student's object), so a
    check does not depend on the student's initialisation and zero-initialised layers still show
    their effect.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear | torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1)
            elif isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
                if m.weight is not None:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.2)
                if m.running_mean is not None:
                    m.running_mean.normal_(0.0, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
    return model


def _is_forbidden_name(module_name: str) -> bool:
    return module_name.split(".")[0] in FORBIDDEN_MODULE_PREFIXES


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    """A code object and every code object nested in it (inner functions, comprehensions)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _functions_of(obj: object) -> Iterator[types.FunctionType]:
    """The Python functions that make up `obj`: itself, or a class's own methods."""
    if isinstance(obj, types.FunctionType):
        yield obj
    elif isinstance(obj, type):
        for cls in obj.__mro__:
            if cls.__module__ != obj.__module__:
                continue  # torch.nn.Module, object, ...: not the student's code
            for attr in vars(cls).values():
                attr = getattr(attr, "__func__", attr)  # staticmethod / classmethod
                if isinstance(attr, property):
                    attr = attr.fget
                if isinstance(attr, types.FunctionType):
                    yield attr


def library_references(obj: object, _seen: set[int] | None = None) -> list[str]:
    """Names of course-library objects that the student's function or class uses.

    Follows imports inside function bodies, global names (modules, functions, classes imported
    from resnet_course or grader), base classes, and the student's own helpers defined in the
    same namespace, so a thin wrapper around the library is recognised.
    """
    reported = getattr(obj, "__subject_library_references__", None)
    # a proxy of a subject's object (grader.judging.proxy): its report
    if isinstance(reported, list):
        return list(reported)
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found: list[str] = []
    if isinstance(obj, type):
        found += [f"base class {c.__module__}.{c.__name__}" for c in obj.__mro__
                  if _is_forbidden_name(c.__module__)]
    for func in _functions_of(obj):
        for code in _code_objects(func.__code__):
            for ins in dis.get_instructions(code):
                if ins.opname == "IMPORT_NAME" and _is_forbidden_name(str(ins.argval)):
                    found.append(f"import {ins.argval}")
                elif ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    value = func.__globals__.get(str(ins.argval))
                    found += _global_reference(str(ins.argval), value, obj, seen)
    return found


def _global_reference(name: str, value: object, owner: object, seen: set[int]) -> list[str]:
    if isinstance(value, types.ModuleType):
        return [f"module {value.__name__}"] if _is_forbidden_name(value.__name__) else []
    module = getattr(value, "__module__", None)
    if not isinstance(module, str):
        return []
    if _is_forbidden_name(module):
        return [f"{name} from {module}"]
    if module == getattr(owner, "__module__", None) and isinstance(
            value, types.FunctionType | type):
        return library_references(value, seen)  # the student's own helper: look inside it
    return []


def build_module(cls, name: str, call: str, *args, **kwargs) -> torch.nn.Module:
    """Instantiate the student's class `name` (warnings silenced) as `call` describes it; it must
    give an nn.Module of the student's own making."""
    with quiet():
        module = cls(*args, **kwargs)
    expect(isinstance(module, torch.nn.Module), f"{call} must be an nn.Module",
           type(module).__name__, "an nn.Module subclass")
    expect_own_implementation(module, name)
    return module
