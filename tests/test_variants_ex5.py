"""ex5_gpu_training graded end to end: wrong answers lose points, correct ones get full marks."""

import pytest
from variant_grading import grade_variants, problems
from variants_ex5 import CORRECT, WRONG

ASSIGNMENT = "ex5_gpu_training"


@pytest.mark.slow
def test_variants_graded_end_to_end(tmp_path):
    grades, cells, seconds = grade_variants(tmp_path, ASSIGNMENT, WRONG, CORRECT)
    print(f"{ASSIGNMENT}: {seconds:.1f} s of autograde per submission")
    assert set(cells) == {"test_pick_device", "test_train_one_epoch", "test_evaluate"}
    assert problems(grades, cells, WRONG, CORRECT) == []
