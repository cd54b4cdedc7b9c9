"""Unit tests of the hidden-test logic for ex4_image_resnets (no kernel, no nbgrader).

The solution, correct and wrong variants are run against every check in tests/test_checks.py;
these are the tests particular to this assignment.
"""

import pytest
from submissions import load_answers

from grader.checks import ex4

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
