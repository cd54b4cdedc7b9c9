"""Unit tests of the hidden-test logic for ex4_image_resnets (no kernel, no nbgrader)."""

import pytest
from submissions import load_answers
from variants_ex4 import CORRECT, WRONG

from grader.checks import ex4
from grader.checks.common import CheckFailure

CHECKS = {
    "count_parameters": ex4.check_count_parameters,
    "resnet_cifar": ex4.check_resnet_cifar,
}
ASSIGNMENT = "ex4_image_resnets"

# Facts from DESIGN.md (He et al. 2016, CIFAR-10 networks): (depth, shortcut) -> parameters.
PAPER_COUNTS = {(20, "A"): 269_722, (20, "B"): 272_474, (32, "A"): 464_154,
                (56, "A"): 853_018, (110, "A"): 1_727_962}


@pytest.fixture(scope="module")
def solution():
    return load_answers(ASSIGNMENT)


@pytest.mark.parametrize("depth,shortcut", PAPER_COUNTS)
def test_formula_matches_paper(depth, shortcut):
    assert ex4.expected_parameter_count(depth, 10, shortcut) == PAPER_COUNTS[depth, shortcut]


@pytest.mark.parametrize("shortcut", ex4.SHORTCUTS)
def test_formula_matches_solution_model(solution, shortcut):
    for depth in (8, 20, 44):
        model = solution["resnet_cifar"](depth, num_classes=7, shortcut=shortcut)
        assert sum(p.numel() for p in model.parameters()) == \
            ex4.expected_parameter_count(depth, 7, shortcut)


@pytest.mark.parametrize("name", CHECKS)
def test_solution_passes(solution, name):
    for _ in range(2):  # fresh random inputs each time
        CHECKS[name](solution[name])


@pytest.mark.parametrize("variant", CORRECT)
def test_correct_variant_passes(variant):
    namespace = load_answers(ASSIGNMENT, CORRECT[variant])
    for name, check in CHECKS.items():
        check(namespace[name])


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
    for name in CHECKS:
        assert sum(name in answers for answers in CORRECT.values()) >= 2, name
