"""grader.bridge.gradebook without a kernel: the grader's queries and updates on a toy SQLite
gradebook (tests/toy_gradebook.py), and the trusted verdicts written through it
(grader.judging.verdict.kernel_differences)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from toy_gradebook import AID, MAX_SCORE, add_submission, grade_row, make_course

from grader.bridge import gradebook
from grader.bridge.course import sqlite_url
from grader.judging.verdict import CellVerdict, kernel_differences


def record(url: str, student_id: str, assignment_id: str, verdicts) -> list[str]:
    """The verdicts' scores in place of the kernel's, and the differences (what autograde's
    recording step does with FinalAutoGrades, here on a gradebook that has the kernel's)."""
    kernel = gradebook.auto_scores(url, student_id, assignment_id)
    gradebook.set_auto_scores(url, student_id, assignment_id,
                              {v.grade_id: v.score for v in verdicts})
    return kernel_differences(kernel, verdicts)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = make_course(tmp_path)
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0}, manual={"answer_text": 2.5})
    return url


def test_lookups(url):
    assert gradebook.has_submission(url, "ann", AID)
    assert not gradebook.has_submission(url, "bo", AID)
    assert gradebook.assignment_registered(url, AID)
    assert not gradebook.assignment_registered(url, "other")
    assert gradebook.max_scores(url, [AID]) == {AID: MAX_SCORE}
    with gradebook.open_gradebook(url) as gb:
        assert [g.name for g in gradebook.grades(gb, "ann", AID)] == [
            "test_b", "answer_text", "test_a"]


def test_register_students_once_each(url):
    gradebook.register_students(url, ["cy", "ann", "cy"])
    with gradebook.open_gradebook(url) as gb:
        assert sorted(s.id for s in gb.students) == ["ann", "cy"]
    assert gradebook.student_names(url, ["cy", "nobody"]) == {"cy": ("", "")}


def test_zero_autograded_keeps_hand_grades(url):
    gradebook.zero_autograded(url, "ann", AID)
    assert grade_row(url, "ann", "test_b") == (0.0, None, False)
    assert grade_row(url, "ann", "answer_text") == (None, 2.5, False)


def test_record_zero_makes_a_row_for_an_unrun_submission(url):
    gradebook.record_zero(url, "bo", AID)  # never added: created with 0 everywhere
    for grade_id in ("test_b", "answer_text", "test_a"):
        assert grade_row(url, "bo", grade_id) == (0.0, None, False)
    gradebook.record_zero(url, "ann", AID)  # an unreadable new hand-in: the hand grade goes
    assert grade_row(url, "ann", "answer_text") == (0.0, None, False)


def test_set_auto_scores_reports_changes_only(url):
    changed = gradebook.set_auto_scores(url, "ann", AID, {"test_b": 2.0, "test_a": 1.5,
                                                          "answer_text": 3.0, "nope": 1.0})
    assert changed == [("test_a", 0.0, 1.5)]
    assert grade_row(url, "ann", "test_a")[0] == 1.5
    assert grade_row(url, "ann", "answer_text") == (None, 2.5, False)  # not autograded


def test_verdicts_replace_the_kernels_scores(url):
    verdicts = [CellVerdict("test_b", 0.0, 2.0, "AssertionError: wrong shape\nmore"),
                CellVerdict("test_a", 0.0, 1.5)]
    differences = record(url, "ann", AID, verdicts)
    assert differences == ["test_b: the notebook's kernel reported 2, the grader's own run "
                           "gives 0 / 2 (AssertionError: wrong shape)"]
    assert grade_row(url, "ann", "test_b")[0] == 0.0
    assert record(url, "ann", AID, verdicts) == []  # nothing differs any more


def test_the_kernel_is_held_to_the_visible_tests_it_ran(url):
    # the kernel ran test_b without its hidden tests and reported 2; the verdict fails the cell
    # on a hidden test while the visible part passed: no mismatch, the verdict's 0 stands
    assert gradebook.auto_scores(url, "ann", AID) == {"test_b": 2.0, "test_a": 0.0}
    verdicts = [CellVerdict("test_b", 0.0, 2.0, "hidden: wrong", visible_score=2.0),
                CellVerdict("test_a", 0.0, 1.5, "x", visible_score=1.5)]
    assert record(url, "ann", AID, verdicts) == [
        "test_a: the notebook's kernel reported 0 for the visible tests, the grader's own run "
        "of them gives 1.5 (with the hidden tests: 0 / 1.5) (x)"]
    assert grade_row(url, "ann", "test_b")[0] == 0.0
    unknown = [CellVerdict("test_b", 0.0, 2.0, "x", visible_score=0.0, visible_known=False)]
    assert record(url, "ann", AID, unknown) == []


def test_confirmed_hand_grades(url):
    assert gradebook.confirmed_hand_grades(url, "ann", AID) == [(AID, "answer_text", None)]
    assert gradebook.confirmed_hand_grades(url, "bo", AID) == []


def test_new_gradebooks_get_nbgrader_s_own_schema_revision(tmp_path):
    # nbgrader finds the revision by running `alembic heads`; the grader reads it in-process
    from nbgrader.api import Gradebook

    assert gradebook.alembic_head() == gradebook.nbgrader_alembic_version()
    with Gradebook(sqlite_url(tmp_path)) as gb:
        stamped = gb.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert stamped == gradebook.alembic_head()
