"""Every assignment graded end to end: wrong answers lose points, correct ones get full marks.

One `python -m grader autograde` run per assignment (see tests/variant_grading.py).
"""

import pytest
import variants_ex1
import variants_ex2
import variants_ex3
import variants_ex4
import variants_ex5
from variant_grading import run

# assignment -> (variants module, cells that a wrong answer may also cost)
ASSIGNMENTS = {
    "ex1_degradation": (variants_ex1, {}),
    "ex2_identity": (variants_ex2,
                     {"ResidualBlock": {"test_residual_mlp", "test_zero_init_residual_"},
                      "PreActBlock": {"test_preact_mlp"}}),
    "ex3_shortcuts": (variants_ex3,
                      {"ZeroPadShortcut": {"test_BasicBlock", "test_Bottleneck"},
                       "ProjectionShortcut": {"test_BasicBlock", "test_Bottleneck"}}),
    "ex4_image_resnets": (variants_ex4, {}),
    "ex5_gpu_training": (variants_ex5, {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_variants_graded_end_to_end(tmp_path, assignment):
    variants, dependents = ASSIGNMENTS[assignment]
    # Every wrong and every correct variant, each as its own submission.
    assert run(tmp_path, assignment, variants.WRONG, variants.CORRECT, dependents) == []
