"""grader/checks/ex1.py, the hidden-test logic of ex1_degradation (no kernel, no nbgrader): the
solution and every correct variant of tests/variants_ex1.py pass every check; every wrong variant
fails the check of its own name with an observed/expected message (tests/variant_checks.py).
"""

import variants_ex1
from variant_checks import contract_tests

from grader.checks import ex1

ASSIGNMENT = "ex1_degradation"
CHECKS = {
    "plain_mlp": ex1.check_plain_mlp,
    "training_error": ex1.check_training_error,
    "layer_gradient_norms": ex1.check_layer_gradient_norms,
    "plain_bn_mlp": ex1.check_plain_bn_mlp,
}

(test_solution_passes, test_solution_passes_on_more_random_draws,
 test_solution_passes_visible_tests, test_correct_variant_passes, test_wrong_variant_fails,
 test_wrong_variant_fails_on_more_random_draws,
 test_every_contract_name_has_variants) = contract_tests(ASSIGNMENT, variants_ex1, CHECKS)
