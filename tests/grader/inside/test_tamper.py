"""grader/inside/tamper.py: the runtime report notices rebinding by identity against the
baseline. The static scan is in tests/grader/integrity/test_tamper_scan.py."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from grader.inside import tamper


@pytest.fixture
def baseline():
    saved = tamper._BASELINE
    tamper.snapshot()
    yield
    tamper._BASELINE = saved


def test_runtime_report_is_clean_without_changes(baseline):
    assert tamper.runtime_report() == []


@pytest.mark.parametrize("owner,name,fake", [
    (torch, "allclose", lambda *a, **k: True),
    (torch, "equal", lambda *a, **k: True),
    (np, "allclose", lambda *a, **k: True),
    (builtins, "isinstance", lambda *a: True),
    (torch.Tensor, "__eq__", lambda self, other: True),
    (torch.Tensor, "item", lambda self: 0.0),
])
def test_runtime_report_notices_rebinding(baseline, owner, name, fake):
    had = name in vars(owner)
    original = vars(owner).get(name)
    setattr(owner, name, fake)
    try:
        reasons = tamper.runtime_report()
    finally:
        if had:
            setattr(owner, name, original)
        else:
            delattr(owner, name)
    assert any(name in r for r in reasons), reasons
    assert tamper.runtime_report() == []  # restored: clean again


def test_runtime_report_notices_replaced_modules(baseline):
    import sys

    real = sys.modules["numpy"]
    sys.modules["numpy"] = type(sys)("numpy")
    try:
        reasons = tamper.runtime_report()
    finally:
        sys.modules["numpy"] = real
    assert any("numpy" in r for r in reasons), reasons


def test_fingerprint_fallback_without_baseline():
    saved, tamper._BASELINE = tamper._BASELINE, None
    original = torch.allclose
    torch.allclose = lambda *a, **k: True
    try:
        reasons = tamper.runtime_report()
    finally:
        torch.allclose = original
        tamper._BASELINE = saved
    assert any("torch.allclose" in r for r in reasons), reasons


def test_assert_untampered(baseline):
    tamper.assert_untampered()
    original = torch.equal
    torch.equal = lambda a, b: True
    try:
        with pytest.raises(AssertionError, match="tamper-suspected"):
            tamper.assert_untampered()
    finally:
        torch.equal = original
