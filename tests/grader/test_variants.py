"""Every assignment graded end to end: wrong answers lose points, correct ones get full marks.

One `python -m grader autograde` run per assignment (see tests/variant_grading.py), then one test
per submission, so a report names each submission that was graded wrongly and how. Graded end to
end: every correct variant and, of the wrong ones, those `end_to_end_selection` picks (one per
test cell, plus the ones that use the course library or cross the trusted verdict's wire in a
special way); tests/grader/checks/test_exN.py judges every wrong variant in-process. The solution
and the release: `grader check` in tests/grader/commands/test_check.py.
"""

import pytest
import variants_ex1
import variants_ex2
import variants_ex3
import variants_ex4
import variants_ex5
from variant_grading import end_to_end_selection, grade_variants, judge, submissions_to_judge

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


def wrong_end_to_end(assignment: str) -> dict[str, dict[str, str]]:
    return end_to_end_selection(ASSIGNMENTS[assignment][0].WRONG)


def by_assignment(assignment: str, *values: str, id: str) -> object:
    # one xdist worker per assignment: its submissions are graded once, on that worker
    return pytest.param(assignment, *values, id=id,
                        marks=pytest.mark.xdist_group(f"variants-{assignment}"))


SUBMISSIONS = [
    by_assignment(assignment, student, id=f"{assignment}:{student}")
    for assignment, (variants, _) in ASSIGNMENTS.items()
    for student in submissions_to_judge(wrong_end_to_end(assignment), variants.CORRECT)
]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """`graded(assignment)` -> (grades, points per test cell), from ONE autograde run of all its
    submissions, made on first use (an error is kept and raised again, not retried)."""
    results: dict[str, tuple] = {}

    def get(assignment: str) -> tuple[dict, dict[str, float]]:
        if assignment not in results:
            variants, _ = ASSIGNMENTS[assignment]
            try:
                grades, cells, seconds = grade_variants(
                    tmp_path_factory.mktemp(assignment), assignment,
                    wrong_end_to_end(assignment), variants.CORRECT)  # fmt: skip
                print(f"{assignment}: {seconds:.1f} s of autograde per submission")
                results[assignment] = (grades, cells)
            except Exception as error:  # noqa: BLE001 - kept for every test of the assignment
                results[assignment] = error
        if isinstance(results[assignment], Exception):
            raise results[assignment]
        return results[assignment]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [by_assignment(a, id=a) for a in ASSIGNMENTS])
def test_test_cells_are_named_after_the_answers(graded, assignment):
    variants, _ = ASSIGNMENTS[assignment]
    _, cells = graded(assignment)
    assert set(cells) == {f"test_{name}" for name in variants.WRONG}


@pytest.mark.slow
@pytest.mark.parametrize("assignment, student", SUBMISSIONS)
def test_submission_graded_as_expected(graded, assignment, student):
    variants, dependents = ASSIGNMENTS[assignment]
    grades, cells = graded(assignment)
    judged = submissions_to_judge(wrong_end_to_end(assignment), variants.CORRECT)
    kind, name, variant = judged[student]
    assert judge(grades, cells, student, kind, name, variant, dependents) == []
