"""Unit tests of the hidden-test logic for ex3_shortcuts (no kernel, no nbgrader)."""

import pytest
from submissions import load_answers, visible_tests
from variants_ex3 import CORRECT, WRONG

from grader.checks import ex3
from grader.checks.common import CheckFailure

CHECKS = {
    "ZeroPadShortcut": ex3.check_zero_pad_shortcut,
    "ProjectionShortcut": ex3.check_projection_shortcut,
    "BasicBlock": ex3.check_basic_block,
}
ASSIGNMENT = "ex3_shortcuts"


@pytest.fixture(scope="module")
def solution():
    return load_answers(ASSIGNMENT)


@pytest.mark.parametrize("name", CHECKS)
def test_solution_passes(solution, name):
    for _ in range(3):  # fresh random inputs each time
        CHECKS[name](solution[name])


def test_solution_passes_visible_tests(solution):
    for source in visible_tests(ASSIGNMENT).values():
        exec(source, dict(solution))


@pytest.mark.parametrize("variant", CORRECT)
def test_correct_variant_passes(variant):
    namespace = load_answers(ASSIGNMENT, CORRECT[variant])
    for name, check in CHECKS.items():
        check(namespace[name])
    for source in visible_tests(ASSIGNMENT).values():  # the visible tests accept it too
        exec(source, namespace)


@pytest.mark.parametrize("name,variant", [(n, v) for n in WRONG for v in WRONG[n]])
def test_wrong_variant_fails(name, variant):
    namespace = load_answers(ASSIGNMENT, {name: WRONG[name][variant]})
    with pytest.raises(CheckFailure) as info:
        CHECKS[name](namespace[name])
    message = str(info.value)
    assert "observed" in message and "expected" in message


def test_every_contract_name_has_variants():
    assert set(WRONG) == set(CHECKS)
    assert all(len(v) >= 3 for v in WRONG.values())
    assert all(set(CHECKS) <= set(answers) for answers in CORRECT.values())
