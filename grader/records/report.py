"""Grades out of the gradebook into grades.csv / grades_by_cell.csv, the list of flagged
submissions (review.csv), the record of a run (for `export`), and placeholder feedback."""

from __future__ import annotations

import csv
import html
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.bridge import cell_roles, gradebook
from grader.bridge.course import CourseLayout
from grader.records.flags import format_flags, review_path

GRADES_HEADER = ["student_id", "assignment", "score", "max_score", "needs_manual_grade", "flags"]
CELLS_HEADER = ["student_id", "assignment", "notebook", "grade_id", "score", "max_score"]
REVIEW_HEADER = ["student_id", "assignment", "flags", "details"]


@dataclass(frozen=True)
class CellGrade:
    student_id: str
    assignment: str
    notebook: str
    grade_id: str
    score: float
    max_score: float
    auto_score: float | None  # None: not autograded (a written answer, graded by hand)
    needs_manual_grade: bool


@dataclass(frozen=True)
class SubmissionGrade:
    student_id: str
    assignment: str
    score: float
    max_score: float
    needs_manual_grade: bool
    flags: tuple[str, ...]


def cell_order(course_root: Path, assignment_id: str) -> dict[tuple[str, str], int]:
    """(notebook, grade_id) -> position in the source notebook, so rows follow the notebook."""
    order = {}
    for path in sorted(CourseLayout(course_root).source(assignment_id).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            grade_id = cell_roles.grade_id(cell)
            if grade_id:
                order[(path.stem, grade_id)] = i
    return order


def read_cell_grades(db_url: str, course_root: Path, student_id: str,
                     assignment_id: str) -> list[CellGrade]:
    """Every graded cell of one submission, in notebook order."""
    with gradebook.open_gradebook(db_url) as gb:
        return _cell_grades(gb, cell_order(course_root, assignment_id), student_id,
                            assignment_id)


def _cell_grades(gb, order: dict[tuple[str, str], int], student_id: str,
                 assignment_id: str) -> list[CellGrade]:
    """read_cell_grades on an open gradebook, with the assignment's cell_order."""
    submission = gb.find_submission(assignment_id, student_id)
    cells = [CellGrade(student_id, assignment_id, nb.name, grade.name,
                       float(grade.score or 0.0), float(grade.max_score),
                       grade.auto_score, bool(grade.needs_manual_grade))
             for nb in submission.notebooks for grade in nb.grades]
    return sorted(cells, key=lambda c: (c.notebook, order.get((c.notebook, c.grade_id), 10**9),
                                        c.grade_id))


def summarize(cells: list[CellGrade], student_id: str, assignment_id: str,
              flags: list[str]) -> SubmissionGrade:
    return SubmissionGrade(student_id, assignment_id,
                           score=sum(c.score for c in cells),
                           max_score=sum(c.max_score for c in cells),
                           needs_manual_grade=any(c.needs_manual_grade for c in cells),
                           flags=tuple(sorted(set(flags))))


def number(x: float) -> str:
    """3.0 -> '3', 2.5 -> '2.5': the same text for the same value on every run."""
    return f"{x:.6f}".rstrip("0").rstrip(".")


def write_csvs(workdir: Path, grades: list[SubmissionGrade], cells: list[CellGrade]) -> None:
    grades = sorted(grades, key=lambda g: (g.student_id, g.assignment))
    with open(CourseLayout(workdir).grades_csv(), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(GRADES_HEADER)
        for g in grades:
            w.writerow([g.student_id, g.assignment, number(g.score), number(g.max_score),
                        str(g.needs_manual_grade).lower(), format_flags(g.flags)])
    # cells arrive in notebook order per submission; a stable sort keeps it within one
    cells = sorted(cells, key=lambda c: (c.student_id, c.assignment))
    with open(CourseLayout(workdir).cells_csv(), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CELLS_HEADER)
        for c in cells:
            w.writerow([c.student_id, c.assignment, c.notebook, c.grade_id, number(c.score),
                        number(c.max_score)])


def write_reports(db_url: str, workdir: Path,
                  submissions: Iterable[tuple[str, str, Iterable[str]]],
                  extra: Iterable[SubmissionGrade] = ()) -> None:
    """grades.csv and grades_by_cell.csv for (student, assignment, flags), read from the
    gradebook: hand grades given in formgrader count as they are (nbgrader's Grade.score).
    `extra` rows (refused folders, never in the gradebook) go into grades.csv as they are."""
    grades, cells = list(extra), []
    orders: dict[str, dict] = {}  # assignment -> cell_order, read once per assignment
    with gradebook.open_gradebook(db_url) as gb:  # once per run, not once per submission
        for student_id, assignment_id, flags in sorted(submissions, key=lambda t: t[:2]):
            if assignment_id not in orders:
                orders[assignment_id] = cell_order(workdir, assignment_id)
            sub_cells = _cell_grades(gb, orders[assignment_id], student_id, assignment_id)
            cells += sub_cells
            grades.append(summarize(sub_cells, student_id, assignment_id, list(flags)))
    write_csvs(workdir, grades, cells)


def write_review_list(course_root: Path, rows: Iterable[tuple[str, str, str]]) -> None:
    """DIR/review.csv: student_id, assignment, flags of every flagged submission, and the file
    that explains the flags (DIR/review/<student>/<assignment>.txt, when there is one)."""
    course_root = Path(course_root)
    with CourseLayout(course_root).review_csv().open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(REVIEW_HEADER)
        for student_id, assignment_id, flags in sorted(rows):
            details = review_path(course_root, student_id, assignment_id)
            writer.writerow([student_id, assignment_id, flags,
                             str(details.relative_to(course_root)) if details.exists() else ""])


RUN_RECORD = CourseLayout.RUN_RECORD  # DIR/.grader/last_run.json


def save_run_record(workdir: Path, db_url: str, submissions: list[dict],
                    refused: Iterable[SubmissionGrade] = ()) -> None:
    """What the last autograde reported (submissions with flags, whether nbgrader ran them,
    and the rows of refused folders), so `export` can rewrite the CSVs and feedback later
    without grading again."""
    path = CourseLayout(workdir).run_record()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    record = {"db_url": db_url, "submissions": submissions,
              "refused": refused_as_json(refused)}
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a kill leaves the previous record or the new one


def load_run_record(workdir: Path) -> tuple[str, list[dict]]:
    """(db_url, submissions) of the last autograde in workdir; ValueError if there was none."""
    path = CourseLayout(workdir).run_record()
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{workdir} holds no finished autograde run ({path}: "
                         f"{getattr(err, 'strerror', None) or err}); run `python -m grader "
                         "autograde SUBMISSIONS --workdir DIR` first") from None
    return record["db_url"], record["submissions"]


def refused_rows_from(rows: list[dict]) -> list[SubmissionGrade]:
    """SubmissionGrade rows back from their JSON form in a run record."""
    return [SubmissionGrade(**{**r, "flags": tuple(r["flags"])}) for r in rows]


def refused_as_json(refused: Iterable[SubmissionGrade]) -> list[dict]:
    return [{**g.__dict__, "flags": list(g.flags)} for g in refused]


def write_placeholder_feedback(path: Path, student_id: str, assignment_id: str,
                               problem: str) -> None:
    """Feedback for a submission nbgrader could not run (missing, invalid, kernel died)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    title = html.escape(f"{assignment_id}: feedback for {student_id}")
    path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"
        f"{title}</title></head>\n<body><h1>{title}</h1>\n"
        f"<p>Your submission could not be graded automatically: {html.escape(problem)}</p>\n"
        "<p>Every autograded cell scored 0. Please contact your instructor.</p>\n"
        "</body></html>\n", encoding="utf-8")
