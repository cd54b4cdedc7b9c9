"""ex2_identity graded end to end: wrong answers lose points, correct ones get full marks."""

import pytest
from variant_checks_ex123 import run
from variants_ex2 import CORRECT, WRONG


@pytest.mark.slow
def test_variants_graded_end_to_end(tmp_path):
    assert run(tmp_path, "ex2_identity", WRONG, CORRECT) == []
