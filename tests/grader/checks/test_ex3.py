"""grader/checks/ex3.py, the hidden-test logic of ex3_shortcuts (no kernel, no nbgrader): the
solution and every correct variant of tests/variants_ex3.py pass every check; every wrong variant
fails the check of its own name with an observed/expected message (tests/variant_checks.py).
The pasted Exercise 3 classes that ex4's resnet_cifar builds on: tests/grader/checks/test_ex4.py.
"""

import variants_ex3
from variant_checks import contract_tests

from grader.checks import ex3

ASSIGNMENT = "ex3_shortcuts"
CHECKS = {
    "ZeroPadShortcut": ex3.check_zero_pad_shortcut,
    "ProjectionShortcut": ex3.check_projection_shortcut,
    "BasicBlock": ex3.check_basic_block,
    "Bottleneck": ex3.check_bottleneck,
}

(test_solution_passes, test_solution_passes_on_more_random_draws,
 test_solution_passes_visible_tests, test_correct_variant_passes, test_wrong_variant_fails,
 test_wrong_variant_fails_on_more_random_draws,
 test_every_contract_name_has_variants) = contract_tests(ASSIGNMENT, variants_ex3, CHECKS)
