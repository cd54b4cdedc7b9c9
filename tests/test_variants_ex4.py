"""ex4_image_resnets graded end to end: wrong answers lose points, correct ones get full marks."""

import pytest
from variant_grading import grade_variants, problems
from variants_ex4 import CORRECT, WRONG

ASSIGNMENT = "ex4_image_resnets"


@pytest.mark.slow
def test_variants_graded_end_to_end(tmp_path):
    grades, cells, seconds = grade_variants(tmp_path, ASSIGNMENT, WRONG, CORRECT)
    print(f"{ASSIGNMENT}: {seconds:.1f} s of autograde per submission")
    assert set(cells) == {"test_count_parameters", "test_resnet_cifar"}
    assert problems(grades, cells, WRONG, CORRECT) == []
