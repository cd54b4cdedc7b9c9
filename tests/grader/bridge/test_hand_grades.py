"""grader.bridge.manual without a kernel: when a hand grade counts and when it survives grading the
submission again (the written answer's cell unchanged and its autograder result the same)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from toy_gradebook import AID, add_submission, grade_row, make_course, source_notebook

from grader.bridge import manual
from grader.bridge.gradebook import open_gradebook
from grader.records.report import read_cell_grades


def _hand_in(folder: Path, answer: str = "# answer_text", test_a: str = "# test_a") -> None:
    nb = source_notebook()
    nb.cells[1].source, nb.cells[2].source = answer, test_a
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{AID}.ipynb")


@pytest.fixture
def course(tmp_path: Path):
    """ann's graded hand-in: written answer graded 2.5 by hand and confirmed; her next hand-in
    in SUBMISSIONS is identical until a test changes it."""
    work, submissions = tmp_path / "work", tmp_path / "submissions"
    url = make_course(work)
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0}, manual={"answer_text": 2.5})
    _hand_in(work / "submitted" / "ann" / AID)
    _hand_in(submissions / "ann" / AID)
    return url, work, submissions


def _regrade(url: str, student: str = "ann", test_a: float = 0.0) -> None:
    """What nbgrader's autograde does to the rows: every written answer (and every cell with a
    manual score) needs a manual grade again; the manual score itself stays."""
    with open_gradebook(url) as gb:
        for grade_id in ("test_b", "answer_text", "test_a"):
            grade = gb.find_grade(grade_id, AID, AID, student)
            if grade_id == "test_a":
                grade.auto_score = test_a
            if grade_id == "answer_text" or grade.manual_score is not None:
                grade.needs_manual_grade = True
        gb.db.commit()


def _kept(url, work, submissions, student="ann"):
    return manual.unchanged_hand_grades(url, work, submissions, student, AID)


def test_confirmed_hand_grade_of_an_unchanged_cell_is_kept(course):
    url, work, submissions = course
    kept = _kept(url, work, submissions)
    assert kept == [manual.HandGrade(AID, "answer_text", None)]
    _regrade(url)
    assert grade_row(url, "ann", "answer_text") == (None, 2.5, True)
    manual.keep_hand_grades(url, "ann", AID, kept)
    assert grade_row(url, "ann", "answer_text") == (None, 2.5, False)
    cells = {c.grade_id: c for c in read_cell_grades(url, work, "ann", AID)}
    assert cells["answer_text"].score == 2.5 and not cells["answer_text"].needs_manual_grade


def test_changed_answer_needs_a_new_hand_grade(course):
    url, work, submissions = course
    _hand_in(submissions / "ann" / AID, answer="a better written answer")
    assert _kept(url, work, submissions) == []
    _regrade(url)
    manual.keep_hand_grades(url, "ann", AID, [])
    # the old score stays as a starting point; the instructor is asked to look again
    assert grade_row(url, "ann", "answer_text") == (None, 2.5, True)


def test_a_change_elsewhere_keeps_the_hand_grade(course):
    url, work, submissions = course
    _hand_in(submissions / "ann" / AID, test_a="# a test cell edited by the student")
    assert [h.grade_id for h in _kept(url, work, submissions)] == ["answer_text"]


def test_unconfirmed_hand_grade_is_not_final(tmp_path: Path):
    work, submissions = tmp_path / "work", tmp_path / "submissions"
    url = make_course(work)
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0}, manual={"answer_text": 1.0},
                   confirmed=False)
    _hand_in(work / "submitted" / "ann" / AID)
    _hand_in(submissions / "ann" / AID)
    assert _kept(url, work, submissions) == []


def test_never_graded_or_unreadable_keeps_nothing(course):
    url, work, submissions = course
    _hand_in(submissions / "cy" / AID)
    assert _kept(url, work, submissions, "cy") == []  # not in the gradebook
    (submissions / "ann" / AID / f"{AID}.ipynb").write_text("not a notebook")
    assert _kept(url, work, submissions) == []


def test_hand_grade_on_an_autograded_cell_needs_the_same_result(tmp_path: Path):
    work, submissions = tmp_path / "work", tmp_path / "submissions"
    url = make_course(work)
    # the instructor overrode test_a's autograded 0 with 1 point by hand
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0}, manual={"test_a": 1.0})
    _hand_in(work / "submitted" / "ann" / AID)
    _hand_in(submissions / "ann" / AID)
    kept = _kept(url, work, submissions)
    assert kept == [manual.HandGrade(AID, "test_a", 0.0)]
    _regrade(url, test_a=1.5)  # the autograder now gives another result (e.g. a new limit)
    manual.keep_hand_grades(url, "ann", AID, kept)
    assert grade_row(url, "ann", "test_a") == (1.5, 1.0, True)  # looked at again
    _regrade(url, test_a=0.0)  # the same result as when it was hand graded
    manual.keep_hand_grades(url, "ann", AID, kept)
    assert grade_row(url, "ann", "test_a") == (0.0, 1.0, False)


def test_a_zeroed_hand_in_keeps_no_hand_grade(course):
    url, work, submissions = course
    kept = _kept(url, work, submissions)
    with open_gradebook(url) as gb:  # as gradebook.record_zero leaves an unreadable hand-in
        grade = gb.find_grade("answer_text", AID, AID, "ann")
        grade.manual_score, grade.needs_manual_grade = None, True
        gb.db.commit()
    manual.keep_hand_grades(url, "ann", AID, kept)
    assert grade_row(url, "ann", "answer_text") == (None, None, True)
