"""Hand grades (given in nbgrader's formgrader) survive grading a submission again.

nbgrader's autograde never clears a `manual_score`, but it marks every graded cell that has one,
and every written answer, as `needs_manual_grade` again. So after any re-grade (a new hand-in, or
other `--cell-timeout`/limits) grades.csv would ask for all written answers to be graded anew.

Rule kept here: a hand grade the instructor gave (manual_score set, needs_manual_grade False)
stays final when the cell it judged is unchanged in the new hand-in and its autograder result
(None for a written answer) is the same. Otherwise nbgrader's "needs manual grade" stands: the
old manual score is kept as a starting point, and the instructor looks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.bridge import cell_roles, gradebook
from grader.bridge.course import CourseLayout


@dataclass(frozen=True)
class HandGrade:
    """A confirmed hand grade whose cell the new hand-in leaves unchanged."""

    notebook: str
    grade_id: str
    auto_score: float | None  # the autograder's result when the instructor graded


def _cell_sources(path: Path) -> dict[str, str] | None:
    """grade_id -> cell source of a notebook; None when it is missing or unreadable."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # missing, not JSON, not a notebook: nothing to compare with
        return None
    return {cell_roles.grade_id(c): c.source for c in nb.cells if cell_roles.grade_id(c)}


def unchanged_hand_grades(db_url: str, course_root: Path, submissions: Path, student_id: str,
                          assignment_id: str) -> list[HandGrade]:
    """Call BEFORE the new hand-in replaces DIR/submitted: confirmed hand grades whose cell is
    the same in SUBMISSIONS/<student>/<assignment>/ as in the copy graded last time."""
    confirmed = [HandGrade(*row) for row in
                 gradebook.confirmed_hand_grades(db_url, student_id, assignment_id)]
    kept = []
    for notebook in sorted({h.notebook for h in confirmed}):
        name = f"{notebook}.ipynb"
        old = _cell_sources(CourseLayout(course_root).submitted(student_id, assignment_id) / name)
        new = _cell_sources(submissions / student_id / assignment_id / name)
        if old is None or new is None:
            continue
        kept += [h for h in confirmed if h.notebook == notebook
                 and h.grade_id in old and old[h.grade_id] == new.get(h.grade_id)]
    return kept


def keep_hand_grades(db_url: str, student_id: str, assignment_id: str,
                     hand_grades: list[HandGrade]) -> None:
    """Call AFTER re-grading: undo nbgrader's "needs manual grade" for the unchanged cells
    (a zeroed, now unreadable hand-in has no manual score left: nothing to keep)."""
    gradebook.confirm_hand_grades(db_url, student_id, assignment_id,
                                  [(h.notebook, h.grade_id, h.auto_score) for h in hand_grades])
