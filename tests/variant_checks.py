"""The in-process tests every assignment's hidden-test logic gets (no kernel, no nbgrader), made
once here and bound in each assignment's own test file (tests/grader/checks/test_exN.py):

    (test_solution_passes, ...) = contract_tests(ASSIGNMENT, variants_exN, CHECKS)

The solution and every correct variant pass every check (and the visible tests); every wrong
variant of tests/variants_exN.py fails the check of its own name with an observed/expected
message, on every draw. CHECKS maps each contract name to its check in grader.checks.exN.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

import pytest
from submissions import load_answers, visible_tests

from grader.checks.common import CheckFailure


class ContractTests(NamedTuple):
    test_solution_passes: Callable
    test_solution_passes_on_more_random_draws: Callable
    test_solution_passes_visible_tests: Callable
    test_correct_variant_passes: Callable
    test_wrong_variant_fails: Callable
    test_wrong_variant_fails_on_more_random_draws: Callable
    test_every_contract_name_has_variants: Callable


def contract_tests(assignment: str, variants: ModuleType,
                   checks: dict[str, Callable]) -> ContractTests:
    """The tests of one assignment's checks, parametrised over its names and variants."""
    wrong_cases = [(n, v) for n in variants.WRONG for v in variants.WRONG[n]]

    @pytest.mark.parametrize("name", list(checks))
    def test_solution_passes(name):
        checks[name](load_answers(assignment)[name])

    @pytest.mark.slow
    @pytest.mark.parametrize("name", list(checks))
    def test_solution_passes_on_more_random_draws(name):
        # each check draws fresh inputs, weights and seeds: a right answer must pass every draw
        solution = load_answers(assignment)
        for _ in range(2):
            checks[name](solution[name])

    def test_solution_passes_visible_tests():
        solution = load_answers(assignment)
        for source in visible_tests(assignment).values():
            exec(source, dict(solution))

    @pytest.mark.parametrize("variant", list(variants.CORRECT))
    def test_correct_variant_passes(variant):
        namespace = load_answers(assignment, variants.CORRECT[variant])
        for name, check in checks.items():
            check(namespace[name])
        for source in visible_tests(assignment).values():  # the visible tests accept it too
            exec(source, namespace)

    @pytest.mark.parametrize("name,variant", wrong_cases)
    def test_wrong_variant_fails(name, variant):
        namespace = load_answers(assignment, {name: variants.WRONG[name][variant]})
        with pytest.raises(CheckFailure) as info:
            checks[name](namespace[name])
        message = str(info.value)
        assert "observed" in message and "expected" in message

    @pytest.mark.slow
    @pytest.mark.parametrize("name,variant", wrong_cases)
    def test_wrong_variant_fails_on_more_random_draws(name, variant):
        # a check that catches a mistake only on some draws lets it through on others (an answer
        # ignoring groups passed whenever no random conv was grouped)
        namespace = load_answers(assignment, {name: variants.WRONG[name][variant]})
        for _ in range(4):
            with pytest.raises(CheckFailure):
                checks[name](namespace[name])

    def test_every_contract_name_has_variants():
        assert set(variants.WRONG) == set(checks)
        assert all(len(v) >= 3 for v in variants.WRONG.values())
        for name in checks:  # each answer written correctly in at least two other ways
            assert sum(name in answers for answers in variants.CORRECT.values()) >= 2, name

    return ContractTests(
        test_solution_passes, test_solution_passes_on_more_random_draws,
        test_solution_passes_visible_tests, test_correct_variant_passes,
        test_wrong_variant_fails, test_wrong_variant_fails_on_more_random_draws,
        test_every_contract_name_has_variants)
