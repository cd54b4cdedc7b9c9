"""The nbgrader gradebook: opening it, and the few queries and updates the grader makes.

Every other module goes through here (nothing else imports nbgrader.api.Gradebook), so how the
gradebook is opened (SQLAlchemy's autoflush warnings silenced: nbgrader's own add_submission
trips them while the rows are right) and what a "submission's grades" are is spelled once.
Functions that take `gb` work on an open gradebook (`with open_gradebook(url) as gb:`), so a
caller that reads many submissions opens it once; the others open it for one change.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import nbgrader.api
from alembic.script import ScriptDirectory
from nbgrader.api import Grade, Gradebook, MissingEntry
from nbgrader.dbutil import ALEMBIC_DIR
from sqlalchemy.exc import SAWarning


@functools.cache
def alembic_head() -> str:
    """The schema revision nbgrader stamps on a new gradebook: the head of its own migration
    scripts, read here. nbgrader's get_alembic_version() finds the same by starting the
    `alembic heads` executable, which imports nbgrader again: ~2 s of CPU for every new
    gradebook (two per grading run), so every Gradebook nbgrader opens in this process uses
    this one (tests/grader/bridge/test_gradebook.py compares the two)."""
    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


nbgrader_alembic_version = nbgrader.api.get_alembic_version  # the executable's (for the test)
nbgrader.api.get_alembic_version = alembic_head


@contextmanager
def open_gradebook(db_url: str) -> Iterator[Gradebook]:
    """The gradebook at `db_url` (SQLite or PostgreSQL), closed on exit. A new one is stamped
    with alembic_head(), read in this process (nbgrader would start `alembic`)."""
    with Gradebook(db_url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        yield gb


def grades(gb: Gradebook, student_id: str, assignment_id: str) -> list[Grade]:
    """Every graded cell of one submission (nbgrader Grade rows; MissingEntry if none)."""
    submission = gb.find_submission(assignment_id, student_id)
    return [grade for notebook in submission.notebooks for grade in notebook.grades]


def has_submission(db_url: str, student_id: str, assignment_id: str) -> bool:
    with open_gradebook(db_url) as gb:
        try:
            gb.find_submission(assignment_id, student_id)
        except MissingEntry:
            return False
    return True


def assignment_registered(db_url: str, assignment_id: str) -> bool:
    """The gradebook knows the assignment and its notebooks (generate_assignment ran)."""
    with open_gradebook(db_url) as gb:
        try:
            return bool(gb.find_assignment(assignment_id).notebooks)
        except MissingEntry:
            return False


def max_scores(db_url: str, assignment_ids: Iterable[str]) -> dict[str, float]:
    """assignment id -> its total points (registered assignments only)."""
    with open_gradebook(db_url) as gb:
        return {a: float(gb.find_assignment(a).max_score) for a in assignment_ids}


def register_students(db_url: str, student_ids: Iterable[str]) -> None:
    with open_gradebook(db_url) as gb:
        for student_id in sorted(set(student_ids)):
            gb.update_or_create_student(student_id)


def record_zero(db_url: str, student_id: str, assignment_id: str) -> None:
    """Every cell of a submission nbgrader could not run gets 0 points and needs no hand grade
    (as nbgrader does for a missing notebook), so the CSVs have a row for it."""
    with open_gradebook(db_url) as gb:
        gb.update_or_create_student(student_id)
        submission = gb.update_or_create_submission(assignment_id, student_id)
        for grade in (g for notebook in submission.notebooks for g in notebook.grades):
            grade.auto_score = 0.0
            grade.manual_score = None
            grade.needs_manual_grade = False
        gb.db.commit()


def zero_autograded(db_url: str, student_id: str, assignment_id: str) -> None:
    """No points from the autograded cells; hand grades (given after reading the code) are
    kept. Used where no trusted verdict could be reached (grader.judging.verdict)."""
    with open_gradebook(db_url) as gb:
        for grade in grades(gb, student_id, assignment_id):
            if grade.auto_score is not None:
                grade.auto_score = 0.0
        gb.db.commit()


def set_auto_scores(db_url: str, student_id: str, assignment_id: str,
                    scores: dict[str, float]) -> list[tuple[str, float, float]]:
    """Replace the autograded scores of the cells named in `scores` (grade_id -> points);
    cells without an autograded score (written answers) are left alone. Returns
    (grade_id, old score, new score) for each cell whose score changed."""
    changed = []
    with open_gradebook(db_url) as gb:
        for grade in grades(gb, student_id, assignment_id):
            new = scores.get(grade.name)
            if new is None or grade.auto_score is None:
                continue
            if float(grade.auto_score) != new:
                changed.append((grade.name, float(grade.auto_score), new))
            grade.auto_score = new
        gb.db.commit()
    return changed


def auto_scores(db_url: str, student_id: str, assignment_id: str) -> dict[str, float]:
    """grade_id -> autograded score of each autograded cell (what the kernel's run gave,
    before grader.judging.verdict replaces it)."""
    with open_gradebook(db_url) as gb:
        return {g.name: float(g.auto_score) for g in grades(gb, student_id, assignment_id)
                if g.auto_score is not None}


def confirmed_hand_grades(db_url: str, student_id: str,
                          assignment_id: str) -> list[tuple[str, str, float | None]]:
    """(notebook, grade_id, auto_score) of each hand grade the instructor gave and confirmed
    (a manual score, not marked "needs manual grade"); [] for a submission never graded."""
    with open_gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment_id, student_id)
        except MissingEntry:
            return []
        return [(nb.name, g.name, g.auto_score) for nb in submission.notebooks
                for g in nb.grades if g.manual_score is not None and not g.needs_manual_grade]


def confirm_hand_grades(db_url: str, student_id: str, assignment_id: str,
                        kept: Iterable[tuple[str, str, float | None]]) -> None:
    """Clear nbgrader's "needs manual grade" on the (notebook, grade_id, auto_score) cells that
    still have their manual score and the same autograder result as when they were graded."""
    kept = list(kept)
    if not kept:
        return
    with open_gradebook(db_url) as gb:
        for notebook, grade_id, auto_score in kept:
            try:
                grade = gb.find_grade(grade_id, notebook, assignment_id, student_id)
            except MissingEntry:
                continue
            if grade.manual_score is not None and grade.auto_score == auto_score:
                grade.needs_manual_grade = False
        gb.db.commit()


def student_names(db_url: str, student_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """student id -> (first name, last name) ('' when not set)."""
    wanted = set(student_ids)
    with open_gradebook(db_url) as gb:
        return {s.id: (s.first_name or "", s.last_name or "") for s in gb.students
                if s.id in wanted}
