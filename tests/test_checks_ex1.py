"""Unit tests of the hidden-test logic for ex1_degradation (no kernel, no nbgrader)."""

import pytest
from submissions import load_answers, visible_tests
from variants_ex1 import CORRECT, WRONG

from grader.checks import ex1
from grader.checks.common import CheckFailure

CHECKS = {
    "plain_mlp": ex1.check_plain_mlp,
    "training_error": ex1.check_training_error,
    "layer_gradient_norms": ex1.check_layer_gradient_norms,
}
ASSIGNMENT = "ex1_degradation"


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
