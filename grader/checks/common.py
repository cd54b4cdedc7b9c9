"""Shared helpers for hidden tests.

Hidden-test cells call functions in ``grader.checks.exN`` with the student's objects. Those
functions use the helpers here so that every check:

* is seeded from fresh randomness each run (a submission cannot be tuned to one seed),
* compares against a reference computed now, on this machine (never stored floats),
* fails with a message that says what was observed and what was expected,
* refuses objects that merely come from the course library instead of the student's own code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Modules whose objects a student must not hand in as their own implementation.
FORBIDDEN_MODULE_PREFIXES = ("resnet_course", "grader")


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
        diff = (actual - expected).abs().max().item()
        fail(f"{what}: values differ from the reference (largest difference {diff:.3g})",
             _preview(actual), _preview(expected))


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
