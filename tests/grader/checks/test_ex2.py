"""grader/checks/ex2.py, the hidden-test logic of ex2_identity (no kernel, no nbgrader): the
solution and every correct variant of tests/variants_ex2.py pass every check; every wrong variant
fails the check of its own name with an observed/expected message (tests/variant_checks.py).
"""

import variants_ex2
from variant_checks import contract_tests

from grader.checks import ex2

ASSIGNMENT = "ex2_identity"
CHECKS = {
    "ResidualBlock": ex2.check_residual_block,
    "zero_init_residual_": ex2.check_zero_init_residual,
    "residual_mlp": ex2.check_residual_mlp,
    "PreActBlock": ex2.check_preact_block,
    "preact_mlp": ex2.check_preact_mlp,
}

(test_solution_passes, test_solution_passes_on_more_random_draws,
 test_solution_passes_visible_tests, test_correct_variant_passes, test_wrong_variant_fails,
 test_wrong_variant_fails_on_more_random_draws,
 test_every_contract_name_has_variants) = contract_tests(ASSIGNMENT, variants_ex2, CHECKS)
