"""ex1_degradation graded end to end: wrong answers lose points, correct ones get full marks."""

import pytest
from variant_checks_ex123 import run
from variants_ex1 import CORRECT, WRONG


@pytest.mark.slow
def test_variants_graded_end_to_end(tmp_path):
    assert run(tmp_path, "ex1_degradation", WRONG, CORRECT) == []
