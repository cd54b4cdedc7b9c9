"""Kernel-free tests of how tests/grader/test_variants.py judges each graded submission."""

import pytest
import variants_ex1
import variants_ex2
import variants_ex3
import variants_ex4
import variants_ex5
from variant_grading import (
    CROSSES_THE_WIRE,
    build_submissions,
    end_to_end_selection,
    judge,
    submissions_to_judge,
)

CELLS = {"test_block": 2.0, "test_mlp": 3.0, "test_init": 1.0}
DEPENDENTS = {"block": {"test_mlp"}}  # a wrong block may also cost the MLP built on it


def grades_of(student: str, **scores: float) -> dict:
    return {(student, cell): (score, CELLS[cell]) for cell, score in scores.items()}


FULL = {"test_block": 2.0, "test_mlp": 3.0, "test_init": 1.0}
NONE = {"test_block": 0.0, "test_mlp": 0.0, "test_init": 0.0}


@pytest.mark.parametrize(
    "kind, name, variant, scores, expected",
    [
        ("solution", None, "", FULL, []),
        ("solution", None, "", {**FULL, "test_init": 0.5}, ["test_init 0.5 / 1.0, expected full"]),
        ("correct", None, "loop", FULL, []),
        ("correct", None, "loop", {**FULL, "test_mlp": 0.0}, ["test_mlp 0.0 / 3.0, expected full"]),
        ("release", None, "", NONE, []),
        ("release", None, "", {**NONE, "test_block": 1.0}, ["test_block 1.0, expected 0"]),
        ("wrong", "block", "no_relu", {**FULL, "test_block": 0.0}, []),
        ("wrong", "block", "no_relu", {**FULL, "test_block": 0.0, "test_mlp": 0.0}, []),
        ("wrong", "block", "no_relu", FULL, ["test_block 2.0 / 2.0, expected fewer points"]),
        ("wrong", "block", "no_relu", {**FULL, "test_block": 0.0, "test_init": 0.0},
         ["test_init 0.0 / 1.0, expected full marks"]),
        ("wrong", "mlp", "imports_library", NONE, []),  # the whole notebook is zeroed
    ],
    ids=["solution", "solution-short", "correct", "correct-short", "release", "release-scores",
         "wrong", "wrong-and-dependent", "wrong-not-caught", "wrong-costs-unrelated",
         "wrong-library-zeroed"],
)
def test_judge_reports_each_wrong_grade_with_what_was_expected(kind, name, variant, scores,
                                                                expected):
    found = judge(grades_of("s1", **scores), CELLS, "s1", kind, name, variant, DEPENDENTS)
    assert len(found) == len(expected)
    for message, part in zip(found, expected, strict=True):
        assert message.startswith("s1: ") and part in message


def test_judge_reports_a_missing_grade():
    found = judge(grades_of("s1", test_block=2.0, test_mlp=3.0), CELLS, "s1", "solution", None,
                  "")  # fmt: skip
    assert found == ["s1: test_init nan / 1.0, expected full marks"]


VARIANTS = {"ex1_degradation": variants_ex1, "ex2_identity": variants_ex2,
            "ex3_shortcuts": variants_ex3, "ex4_image_resnets": variants_ex4,
            "ex5_gpu_training": variants_ex5}  # fmt: skip


@pytest.mark.parametrize("assignment", VARIANTS)
def test_every_submission_built_is_judged(assignment):
    variants = VARIANTS[assignment]
    built = build_submissions(assignment, variants.WRONG, variants.CORRECT)
    judged = submissions_to_judge(variants.WRONG, variants.CORRECT)
    assert set(built) == set(judged)
    # no two variants share a student id (one would silently replace the other)
    count = sum(len(v) for v in variants.WRONG.values()) + len(variants.CORRECT)
    assert len(judged) == count


@pytest.mark.parametrize("assignment", VARIANTS)
def test_end_to_end_covers_every_test_cell(assignment):
    wrong = VARIANTS[assignment].WRONG
    chosen = end_to_end_selection(wrong)
    assert set(chosen) == set(wrong)  # one wrong answer, at least, per test cell
    for name, variants in wrong.items():
        assert set(chosen[name]) <= set(variants)
        assert next(iter(variants)) in chosen[name]
        must = {v for v in variants if "library" in v or v in CROSSES_THE_WIRE}
        assert must <= set(chosen[name])


def test_every_variant_named_as_crossing_the_wire_exists():
    names = {v for m in VARIANTS.values() for vs in m.WRONG.values() for v in vs}
    assert CROSSES_THE_WIRE <= names  # a renamed variant would silently leave the end-to-end run
