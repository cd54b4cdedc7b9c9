"""ex3's block checks through the trusted-verdict proxies, without a kernel or nbgrader.

A shortcut that is a plain function (the contract: "a module (or function)") must reach the
check as a function that runs in the subject: wire.py used to drop function-valued attributes,
so such a block was reported as having no `shortcut` (issue 20), in BasicBlock and Bottleneck
alike. One subject process for the module (it imports torch once).
"""

from __future__ import annotations

import pytest
import variants_ex3
from submissions import solved_answers

from grader.checks import ex3
from grader.checks.common import CheckFailure
from grader.isolation.limits import Limits
from grader.judging import proxy
from grader.judging.verdict import Subject, helpers_source

ASSIGNMENT = "ex3_shortcuts"
GIVEN = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
ANSWERS = ("ZeroPadShortcut", "ProjectionShortcut", "BasicBlock", "Bottleneck")


def _proxies(answers: dict[str, str]):
    sub = Subject(Limits(cell_timeout=60), sandbox=False)
    cells = [["imports", GIVEN]] + [[name, answers[name]] for name in ANSWERS]
    reply, _ = sub.client.request({"op": "init", "cells": cells, "helpers": helpers_source()},
                                  first_timeout=proxy.STARTUP_SECONDS)
    assert reply["errors"] == [], reply["errors"]
    return sub, {name: sub.client.lookup(name) for name in ANSWERS}


@pytest.fixture(scope="module")
def function_shortcuts():
    answers = solved_answers(ASSIGNMENT)
    answers.update(variants_ex3.CORRECT["function_shortcuts"])
    sub, classes = _proxies(answers)
    yield classes
    sub.close()


@pytest.mark.parametrize("name,check", [("BasicBlock", ex3.check_basic_block),
                                        ("Bottleneck", ex3.check_bottleneck)])
def test_a_function_shortcut_passes_through_the_proxies(function_shortcuts, name, check):
    check(function_shortcuts[name])


def test_the_function_shortcut_is_checked_not_just_carried(function_shortcuts):
    """The function runs in the subject on the check's input: a wrong one would be seen."""
    import torch

    block = function_shortcuts["BasicBlock"](3, 6, stride=2, shortcut="A")
    assert callable(block.shortcut) and not isinstance(block.shortcut, torch.nn.Module)
    x = torch.randn(2, 3, 5, 5)
    skip = block.shortcut(x)
    assert skip.shape == (2, 6, 3, 3) and torch.equal(skip[:, :3], x[:, :, ::2, ::2])
    assert not skip[:, 3:].any()
    with pytest.raises(CheckFailure):  # the same check catches a wrong block through proxies
        answers = solved_answers(ASSIGNMENT)
        answers["BasicBlock"] = variants_ex3.WRONG["BasicBlock"]["identity_when_channels_match"]
        sub, classes = _proxies(answers)
        try:
            ex3.check_basic_block(classes["BasicBlock"])
        finally:
            sub.close()
