"""Unit tests of the hidden-test logic for ex4_image_resnets (no kernel, no nbgrader).

The solution and every correct variant of tests/variants_ex4.py pass every check; every wrong
variant fails the check of its own name with an observed/expected message
(tests/variant_checks.py); the tests after those are particular to this assignment.
"""

import nbformat
import pytest
import torch
import variants_ex4
from submissions import load_answers, solution_path
from variant_checks import contract_tests

from grader.checks import ex4
from grader.checks.common import CheckFailure

ASSIGNMENT = "ex4_image_resnets"
CHECKS = {
    "count_parameters": ex4.check_count_parameters,
    "resnet_cifar": ex4.check_resnet_cifar,
    "count_macs": ex4.check_count_macs,
}

(test_solution_passes, test_solution_passes_on_more_random_draws,
 test_solution_passes_visible_tests, test_correct_variant_passes, test_wrong_variant_fails,
 test_wrong_variant_fails_on_more_random_draws,
 test_every_contract_name_has_variants) = contract_tests(ASSIGNMENT, variants_ex4, CHECKS)

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


# ---------------------------------------------------------------------------------------------
# The pasted Exercise 3 classes (ungraded answer cell `ex3_blocks`) that resnet_cifar builds on
# ---------------------------------------------------------------------------------------------
def _with_pasted_blocks(source: str) -> dict:
    """The solution's namespace with a pasted (wrong) Exercise 3 source run over it."""
    namespace = load_answers(ASSIGNMENT)
    exec(source, namespace)  # resnet_cifar looks BasicBlock up here when it is called
    return namespace


def _check_cell() -> str:
    nb = nbformat.read(solution_path(ASSIGNMENT), as_version=4)
    [cell] = [c for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade_id") == "check_ex3_blocks"]
    return cell.source


@pytest.mark.parametrize("variant", variants_ex4.WRONG_EX3_BLOCKS)
def test_wrong_pasted_block_fails_resnet_cifar_with_a_message(variant):
    """A wrong pasted BasicBlock costs resnet_cifar its points with observed/expected, and
    never a bare exception out of the check (which would hide what went wrong)."""
    namespace = _with_pasted_blocks(variants_ex4.WRONG_EX3_BLOCKS[variant])
    with pytest.raises(CheckFailure) as info:
        ex4.check_resnet_cifar(namespace["resnet_cifar"])
    assert "observed" in str(info.value) and "expected" in str(info.value)
    if variant != "residual_ignored":  # it fails while building or running: say where to look
        assert "your BasicBlock" in str(info.value)


def test_check_cell_passes_the_solution_and_correct_variant():
    for overrides in ({}, variants_ex4.CORRECT["ex3_blocks_written_differently"]):
        namespace = load_answers(ASSIGNMENT, overrides)  # runs the check cell too
        exec(_check_cell(), namespace)


@pytest.mark.parametrize("variant,hint", [
    ("no_residual_argument", "residual=True"),
    ("residual_ignored", "a plain block adds nothing"),
    ("shortcut_shape_ignored", "failed on a (2, 16, 8, 8) input"),
])
def test_check_cell_says_what_is_wrong(variant, hint):
    namespace = _with_pasted_blocks(variants_ex4.WRONG_EX3_BLOCKS[variant])
    with pytest.raises(AssertionError) as info:
        exec(_check_cell(), namespace)
    assert hint in str(info.value)


def test_check_cell_names_missing_classes():
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    with pytest.raises(AssertionError, match="paste your Exercise 3 classes.*BasicBlock"):
        exec(_check_cell(), namespace)
