"""ex5's hidden checks through the trusted-verdict proxies, without a kernel or nbgrader.

The student's function lives in a subject process (started here without the sandbox; the
end-to-end runs of tests/grader/test_variants.py and tests/grader/test_hostile_verdicts.py use it)
and the
check runs here: the model, loader, optimizer and machine reach the function as descriptions
(grader.judging.described). Every wrong variant must fail the check of its own name (the hidden
check alone, not only the visible asserts), every correct variant and the solution must pass them
all. One subject process per case (each imports torch): about 1.5 min on the 2-core machine under
load, so marked slow; the in-process runs of the same checks (tests/grader/checks/test_ex5.py)
stay fast.
"""

from __future__ import annotations

import pytest
import torch
import variants_ex5
from submissions import solved_answers

from grader.checks import ex5
from grader.checks.common import CheckFailure
from grader.isolation.limits import Limits
from grader.judging import proxy
from grader.judging.verdict import Subject, helpers_source

pytestmark = pytest.mark.slow

ASSIGNMENT = "ex5_gpu_training"
CHECKS = {"pick_device": ex5.check_pick_device, "train_one_epoch": ex5.check_train_one_epoch,
          "evaluate": ex5.check_evaluate, "train_digits": ex5.check_train_digits}
GIVEN = ("import time\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
         "from torch.utils.data import DataLoader, TensorDataset\n")


def proxies(answers: dict[str, str]):
    """A started subject that ran the given imports and `answers`; (subject, name -> proxy)."""
    sub = Subject(Limits(cell_timeout=120), sandbox=False)
    cells = [["imports", GIVEN]] + [[name, source] for name, source in answers.items()]
    reply, _ = sub.client.request({"op": "init", "cells": cells, "helpers": helpers_source()},
                                  first_timeout=proxy.STARTUP_SECONDS)
    assert reply["errors"] == [], reply["errors"]
    return sub, {name: sub.client.lookup(name) for name in answers}


def run_checks(answers: dict[str, str], names) -> dict[str, BaseException | None]:
    sub, functions = proxies(answers)
    try:
        outcome = {}
        for name in names:
            try:
                CHECKS[name](functions[name])
                outcome[name] = None
            except (CheckFailure, AssertionError) as e:
                outcome[name] = e
        return outcome
    finally:
        sub.close()
        ex5.HostBatch.used_unmoved = []


@pytest.mark.parametrize("variant", ["solution", *variants_ex5.CORRECT])
def test_correct_answers_pass_every_check_through_proxies(variant):
    answers = {name: source for name, source in solved_answers(ASSIGNMENT).items()
               if name in CHECKS}  # the code cells (not the written answer)
    answers.update(variants_ex5.CORRECT.get(variant, {}))
    outcome = run_checks(answers, CHECKS)
    assert all(e is None for e in outcome.values()), outcome


@pytest.mark.parametrize("name,variant", [(n, v) for n in variants_ex5.WRONG
                                          for v in variants_ex5.WRONG[n]])
def test_wrong_answers_fail_their_check_through_proxies(name, variant):
    outcome = run_checks({name: variants_ex5.WRONG[name][variant]}, [name])
    assert isinstance(outcome[name], CheckFailure | AssertionError), (name, variant)


def test_pick_device_sees_only_the_machine_the_check_plays():
    """The subject plays each machine for the call only: afterwards it is a CPU box again, and
    the grader's torch is untouched."""
    originals = (torch.cuda.is_available, torch.backends.mps.is_available)
    sub, functions = proxies({"pick_device": solved_answers(ASSIGNMENT)["pick_device"]})
    try:
        ex5.check_pick_device(functions["pick_device"])
        assert functions["pick_device"]() == torch.device("cpu")
    finally:
        sub.close()
    assert (torch.cuda.is_available, torch.backends.mps.is_available) == originals
