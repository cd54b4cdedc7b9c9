"""`grader export --format canvas|moodle`: grades.csv pivoted into a file an LMS imports.

Both are "one row per student, one column per assignment" CSVs, built from DIR/grades.csv
(which export has just rewritten from the gradebook, hand grades included). A cell is the
assignment's total score; it is empty when the student has no row for that assignment.
The nbgrader student id (the SUBMISSIONS folder name, usually the LMS login) identifies the
student; the gradebook's first and last names fill the name columns when they are set.

Canvas (Gradebook > Import): the layout of Canvas's own gradebook export, which its import
reads back — columns Student, ID, SIS User ID, SIS Login ID, Section, then one per assignment;
a second row "Points Possible" gives each assignment's points; a column Canvas does not know
becomes a new assignment, one with the same title is updated. Sources: Instructure's Canvas
Instructor Guide, "How do I import grades in the Gradebook?"
(https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807);
Canvas's importer itself (instructure/canvas-lms, app/models/gradebook_importer.rb: the header
must start Student, ID[, SIS User ID, SIS Login ID], Section; a row whose first cell is "Points
Possible" sets points; a student is found by ID, then SIS User ID, then SIS Login ID, then
name; an assignment by "Title (id)" or by title); Ohio State, "Import a CSV file to Carmen Grades"
(student name or ID or SIS User ID, SIS Login ID, Section and assignment columns; new
assignment columns create assignments; an uploaded score overwrites the one in Canvas):
https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
and VCU's "Gradebook Action Menu" (the export CSV is what is re-uploaded):
https://ts.vcu.edu/askit/teaching-and-learning/canvas/faculty/grading-faculty/gradebook-action-menu-faculty/
We fill SIS Login ID with the student id and leave Canvas's internal ID empty.

Moodle (Grade administration > Import > CSV file): a header row, one column that identifies the
user and one column per grade item; on the preview page "Map from" picks the identifying
column and "Map to" the user field (userid, username, useridnumber, useremail), and each grade
column is mapped to a grade item or "new grade item". Sources: MoodleDocs, "Grade import",
CSV grade import (https://docs.moodle.org/311/en/Grade_import); Moodle's importer (moodle/moodle,
grade/import/csv/classes/load_data.php: map_user_data_with_value accepts userid, useridnumber,
useremail, username; one row whose user is not found aborts the whole import; a grade '' or
'-' is "no grade"). We write Username, First name, Last name, then one column per assignment:
map Username -> username. In both files an empty cell means "no grade".
"""

from __future__ import annotations

import csv
from pathlib import Path

FORMATS = ("csv", "canvas", "moodle")
CANVAS_FILE = "grades_canvas.csv"
MOODLE_FILE = "grades_moodle.csv"
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["Username", "First name", "Last name"]


def read_grades(workdir: Path) -> tuple[list[str], list[str], dict, dict]:
    """From DIR/grades.csv: (students, assignments, (student, assignment) -> score,
    assignment -> max score)."""
    with open(Path(workdir) / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    scores = {(r["student_id"], r["assignment"]): float(r["score"]) for r in rows}
    max_scores = {r["assignment"]: float(r["max_score"]) for r in rows}
    students = sorted({r["student_id"] for r in rows})
    return students, sorted(max_scores), scores, max_scores


def student_names(db_url: str | None, students: list[str]) -> dict[str, tuple[str, str]]:
    """student id -> (first name, last name) from the gradebook ('' when not set)."""
    if not db_url:
        return {}
    from grader.gradebook import student_names as names_in

    return names_in(db_url, students)


def write_canvas(workdir: Path, db_url: str | None = None) -> Path:
    students, assignments, scores, max_scores = read_grades(workdir)
    names = student_names(db_url, students)
    path = Path(workdir) / CANVAS_FILE
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CANVAS_IDENTITY + assignments)
        w.writerow(["Points Possible", "", "", "", ""]
                   + [number(max_scores[a]) for a in assignments])
        for s in students:
            first, last = names.get(s, ("", ""))
            display = f"{last}, {first}" if first and last else s  # Canvas shows "Last, First"
            w.writerow([display, "", "", s, ""] + _cells(scores, s, assignments))
    return path


def write_moodle(workdir: Path, db_url: str | None = None) -> Path:
    students, assignments, scores, _ = read_grades(workdir)
    names = student_names(db_url, students)
    path = Path(workdir) / MOODLE_FILE
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(MOODLE_IDENTITY + assignments)
        for s in students:
            first, last = names.get(s, ("", ""))
            w.writerow([s, first, last] + _cells(scores, s, assignments))
    return path


def number(x: float) -> str:
    from grader.report import number as formatted  # grades.csv's own number format

    return formatted(x)


def _cells(scores: dict, student: str, assignments: list[str]) -> list[str]:
    return [number(scores[student, a]) if (student, a) in scores else "" for a in assignments]


WRITERS = {"canvas": write_canvas, "moodle": write_moodle}
