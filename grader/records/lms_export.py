"""Grades into the files Canvas's and Moodle's grade imports read, joined on the class roster.

Both are "one row per student, one column per assignment" CSVs. A cell is the assignment's
total score (hand grades included). With a roster (grader.records.roster: the LMS's own gradebook
export or Moodle's grading worksheet) every roster student gets a row, with the LMS's own ids,
and a student the roster does not know is left out and reported; without one, each student id
in the grades gets a row. Every cell that is not a plain final score is reported next to the
file, in grades_canvas_report.csv / grades_moodle_report.csv (`student_id, assignment,
problem`): `hand-grading-pending` (the cell is
left empty unless include_pending: a partial score must not look final), `no-hand-in` (empty,
or 0 with missing="zero"), `not-in-roster` (no row), `same-student-twice` (two grade rows
name one roster student, e.g. under login and Canvas ID: the first, in id order, is used).

Canvas (Grades > Import). Columns `Student, ID, SIS User ID, SIS Login ID, Section`, then one
per assignment, and a second row `Points Possible` with each assignment's points. Canvas finds
a student by ID, then SIS User ID, then SIS Login ID, then name; an assignment by the header
`Title (canvas assignment id)`, else by title, and a header it cannot match becomes a NEW
assignment, so with a roster the header is the roster's own `Title (id)` column whenever the
roster has one whose title is the assignment id. An empty cell leaves Canvas's grade as it is.
Sources: Canvas Instructor Guide, "How do I import grades in the Gradebook?"
(https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807);
instructure/canvas-lms, app/models/gradebook_importer.rb (header Student, ID[, SIS User ID,
SIS Login ID], Section; the "Points Possible" row; student and assignment look-up order);
Ohio State, "Import a CSV file to Carmen Grades" (new columns create assignments):
https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades

Moodle (Grades > Import > CSV file). A header row, one column that identifies the user, one
per grade item; on the preview page "Map from" picks the identifying column and "Map to" the
user field (username, useremail, useridnumber, userid), each grade column is mapped to a grade
item. One row whose user Moodle does not know aborts the whole import, so with a roster only
roster users get a row. The import carries no maximum: a column mapped to "new grade item"
becomes an item out of 100, so each assignment's maximum travels in a column of its own,
`<assignment> (maximum grade)` (as Moodle's grading worksheet carries "Maximum Grade"): map it
to "Ignore", and create or pick the grade item with that maximum, or export with percent=True
(every score out of 100, for new items). A grade '' or '-' is "no
grade". Sources: MoodleDocs, "Grade import" (https://docs.moodle.org/en/Grade_import);
moodle/moodle, grade/import/csv/classes/load_data.php (map_user_data_with_value: userid,
useridnumber, useremail, username; an unknown user is an error for the whole file).

The same writers run as nbgrader export plugins: `nbgrader export
--exporter=grader.records.lms_export.CanvasExportPlugin --to grades_canvas.csv
--CanvasExportPlugin.roster=ROSTER.csv` (MoodleExportPlugin likewise), reading nbgrader's
gradebook instead of DIR/grades.csv.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins import ExportPlugin
from traitlets import Bool, Dict, Enum, Unicode

from grader.bridge.course import CourseLayout
from grader.records.roster import (
    CANVAS,
    CANVAS_IDENTITY,
    MOODLE,
    MOODLE_ITEM,
    Roster,
    RosterStudent,
    read_roster,
)

CANVAS_FILE = "grades_canvas.csv"
MOODLE_FILE = "grades_moodle.csv"
REPORT_HEADER = ["student_id", "assignment", "problem"]
MOODLE_IDENTITY = ["Username", "First name", "Last name"]  # without a roster
MOODLE_MAP_TO = {"Username": "username", "Email address": "useremail",
                 "ID number": "useridnumber"}
PENDING, NO_HAND_IN, NOT_IN_ROSTER = "hand-grading-pending", "no-hand-in", "not-in-roster"
TWICE = "same-student-twice"  # two grade rows name one roster student (e.g. login and ID)


@dataclass(frozen=True)
class Grade:
    """One submission's total, from grades.csv or nbgrader's gradebook."""

    student_id: str
    assignment: str
    score: float
    max_score: float
    pending: bool  # a hand grade is still needed (nbgrader's needs_manual_grade)


@dataclass(frozen=True)
class Options:
    roster: Roster | None = None
    missing: str = "blank"          # a roster student's missing hand-in: "blank" or "zero"
    include_pending: bool = False   # write the partial score of a submission still pending
    columns: dict[str, str] = field(default_factory=dict)  # assignment id -> LMS title
    percent: bool = False           # scores as percentages, every maximum 100
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (first, last)


@dataclass
class Table:
    """The rows an LMS file holds, before its layout is applied."""

    assignments: list[str]
    max_scores: dict[str, float]
    students: list[RosterStudent]
    cells: dict[tuple[str, str], str]   # (student_id, assignment) -> cell text
    titles: dict[str, str]              # assignment id -> its title in the LMS
    notes: list[tuple[str, str, str]]   # (student_id, assignment, problem) for the report


def build_table(grades: list[Grade], options: Options) -> Table:
    """Join grades on the roster (or on the grades' own student ids without one)."""
    if options.percent:  # an item the import creates is out of 100 (Moodle's new grade item)
        grades = [Grade(g.student_id, g.assignment,
                        100.0 * g.score / g.max_score if g.max_score else 0.0, 100.0, g.pending)
                  for g in grades]
    assignments = sorted({g.assignment for g in grades})
    max_scores = {g.assignment: g.max_score for g in grades}
    roster, notes = options.roster, []
    if roster is None:
        students = [_unrostered(s, options.names.get(s, ("", "")))
                    for s in sorted({g.student_id for g in grades})]
    else:
        students = list(roster.students)
    found: dict[tuple[str, str], Grade] = {}
    for g in sorted(grades, key=lambda g: (g.student_id, g.assignment)):
        who = roster.find(g.student_id) if roster else _find(students, g.student_id)
        if who is None:
            notes.append((g.student_id, g.assignment, NOT_IN_ROSTER))
        elif (who.student_id, g.assignment) in found:  # the first row stands; this one is shown
            notes.append((g.student_id, g.assignment, TWICE))
        else:
            found[who.student_id, g.assignment] = g
    cells = {}
    for s in students:
        for a in assignments:
            g = found.get((s.student_id, a))
            if g is None:
                notes.append((s.student_id, a, NO_HAND_IN))
                cells[s.student_id, a] = "0" if options.missing == "zero" else ""
            elif g.pending:
                notes.append((s.student_id, a, PENDING))
                cells[s.student_id, a] = number(g.score) if options.include_pending else ""
            else:
                cells[s.student_id, a] = number(g.score)
    titles = {a: options.columns.get(a, a) for a in assignments}
    return Table(assignments, max_scores, students, cells, titles, notes)


def _unrostered(student_id: str, names: tuple[str, str]) -> RosterStudent:
    first, last = names
    display = f"{last}, {first}" if first and last else student_id  # Canvas shows "Last, First"
    return RosterStudent(student_id, display, "", {"First name": first, "Last name": last},
                         frozenset({student_id}))


def _find(students: list[RosterStudent], student_id: str) -> RosterStudent | None:
    return next((s for s in students if s.student_id == student_id), None)


def canvas_rows(table: Table, roster: Roster | None) -> list[list[str]]:
    headers = [_column(roster, table.titles[a]) for a in table.assignments]
    rows = [CANVAS_IDENTITY + headers,
            ["Points Possible", "", "", "", ""]
            + [number(table.max_scores[a]) for a in table.assignments]]
    for s in table.students:
        if roster is None:  # the student id is the login; Canvas's own ids are unknown
            identity = [s.name, "", "", s.student_id, ""]
        else:
            identity = [s.fields.get(c, "") for c in CANVAS_IDENTITY]
        rows.append(identity + [table.cells[s.student_id, a] for a in table.assignments])
    return rows


def moodle_rows(table: Table, roster: Roster | None) -> list[list[str]]:
    if roster is None:
        identity = MOODLE_IDENTITY
        ids = {s.student_id: [s.student_id, s.fields["First name"], s.fields["Last name"]]
               for s in table.students}
    else:  # the roster's id column first (map it), the name for the reader
        identity = [roster.id_column, "Full name"]
        ids = {s.student_id: [s.student_id, s.name] for s in table.students}
    headers = []
    for a in table.assignments:
        title = _column(roster, table.titles[a])
        headers += [title, f"{title} (maximum grade)"]
    rows = [identity + headers]
    for s in table.students:
        cells = []
        for a in table.assignments:
            cells += [table.cells[s.student_id, a], number(table.max_scores[a])]
        rows.append(ids[s.student_id] + cells)
    return rows


def _roster_header(roster: Roster | None, title: str) -> str | None:
    """The roster's column of the assignment titled `title` (`title` may be that header)."""
    if roster is None:
        return None
    if title in roster.assignment_columns.values():
        return title
    return roster.column_for(title)


def _column(roster: Roster | None, title: str) -> str:
    """Canvas: the roster's "Title (id)" header of the assignment titled `title`, so Canvas
    fills that assignment; Moodle: the item's title as the roster spells it. Else `title`,
    which Canvas matches by title or makes a new assignment of."""
    header = _roster_header(roster, title)
    if header is None:
        return title
    if roster.lms == MOODLE:  # "Assignment: ex2_identity (Real)" -> its title
        return MOODLE_ITEM.match(header)["title"]
    return header


ROWS = {CANVAS: canvas_rows, MOODLE: moodle_rows}
FILES = {CANVAS: CANVAS_FILE, MOODLE: MOODLE_FILE}


def write_lms_file(lms: str, path: Path, table: Table, roster: Roster | None) -> Path:
    """The import file at `path` and its report beside it (report_path); returns `path`."""
    _write_csv(path, ROWS[lms](table, roster))
    _write_csv(report_path(path), [REPORT_HEADER, *sorted(set(table.notes))])
    return path


def report_path(path: Path) -> Path:
    """grades_canvas.csv -> grades_canvas_report.csv"""
    return path.with_name(path.stem + "_report.csv")


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def read_grades(workdir: Path) -> list[Grade]:
    """Every row of DIR/grades.csv (export has just rewritten it from the gradebook)."""
    with open(CourseLayout(Path(workdir)).grades_csv(), newline="", encoding="utf-8") as f:
        return [Grade(r["student_id"], r["assignment"], float(r["score"]),
                      float(r["max_score"]), r["needs_manual_grade"] == "true")
                for r in csv.DictReader(f)]


def number(x: float) -> str:
    from grader.records.report import number as formatted  # grades.csv's own number format

    return formatted(x)


def check_roster_fits(lms: str, roster: Roster | None) -> None:
    """ValueError when a roster from one LMS is given for the other's file."""
    if roster is not None and roster.lms != lms:
        raise ValueError(f"the roster is a {roster.kind} file; a {lms} import needs a "
                         f"{lms} roster")


def unmatched_columns(table: Table, roster: Roster | None) -> list[str]:
    """Assignments the roster has no column for (Canvas would create a new assignment). A
    roster without grade columns at all (Moodle's grading worksheet) says nothing of them."""
    if roster is None or not roster.assignment_columns:
        return []
    return [a for a in table.assignments if _roster_header(roster, table.titles[a]) is None]


def describe(table: Table, include_pending: bool = False) -> list[str]:
    """Warnings for the log: what the LMS file does not say by itself."""
    lines = []
    by_problem: dict[str, list[str]] = {}
    for s, a, p in table.notes:
        by_problem.setdefault(p, []).append(f"{s}/{a}")
    if PENDING in by_problem:
        done = "partial score written" if include_pending else "left empty"
        lines.append(f"warning: hand grading pending for {len(by_problem[PENDING])} "
                     f"submission(s), {done} in the LMS file: "
                     f"{', '.join(by_problem[PENDING][:20])}")
    if NOT_IN_ROSTER in by_problem:
        lines.append(f"warning: {len(by_problem[NOT_IN_ROSTER])} grade(s) of students not in "
                     f"the roster left out: {', '.join(by_problem[NOT_IN_ROSTER][:20])}")
    if TWICE in by_problem:
        lines.append(f"warning: {len(by_problem[TWICE])} grade(s) name a roster student who "
                     f"already has one (only the first is used): "
                     f"{', '.join(by_problem[TWICE][:20])}")
    if NO_HAND_IN in by_problem:
        lines.append(f"{len(by_problem[NO_HAND_IN])} roster student(s) x assignment(s) "
                     "without a hand-in")
    return lines


def column_warnings(table: Table, roster: Roster | None) -> list[str]:
    """An assignment the roster has no column for; one whose points differ in the LMS (Canvas
    would show 5 of 10 for 5 of 6.5)."""
    lines = [f"warning: the roster has no column for {a} (titled {table.titles[a]!r}): the "
             f"{roster.lms} import makes a new item of it; name the LMS's title with "
             f"--column {a}=TITLE" for a in unmatched_columns(table, roster)]
    for a in table.assignments:
        header = _roster_header(roster, table.titles[a])
        lms_points = roster.points.get(header) if roster and header else None
        if lms_points is not None and abs(lms_points - table.max_scores[a]) > 1e-9:
            lines.append(f"warning: {header} is out of {number(lms_points)} points in "
                         f"{roster.lms}, {a} out of {number(table.max_scores[a])} here: set "
                         f"the assignment's points in {roster.lms} to match before importing")
    return lines


# ---- nbgrader export plugins -----------------------------------------------------------

def grades_in_gradebook(gradebook, students: list[str], assignments: list[str]) -> list[Grade]:
    """Every submission's total in an open nbgrader Gradebook (late penalty taken off, as
    nbgrader's CsvExportPlugin does)."""
    grades = []
    for assignment in gradebook.assignments:
        if assignments and assignment.name not in assignments:
            continue
        for sub in assignment.submissions:
            if students and sub.student.id not in students:
                continue
            penalty = sub.late_submission_penalty or 0.0
            grades.append(Grade(sub.student.id, assignment.name,
                                max(0.0, float(sub.score) - float(penalty)),
                                float(assignment.max_score), bool(sub.needs_manual_grade)))
    return grades


class LmsExportPlugin(ExportPlugin):
    """Shared by the Canvas and Moodle plugins; `lms` says which file to write."""

    lms = ""
    roster = Unicode("", help="the LMS's gradebook export (or Moodle's grading worksheet), "
                     "to join on: its students, ids and assignment columns").tag(config=True)
    missing = Enum(["blank", "zero"], default_value="blank",
                   help="the cell of a roster student with no hand-in").tag(config=True)
    include_pending = Bool(False, help="write the partial score of submissions whose hand "
                           "grading is pending (default: leave them empty)").tag(config=True)
    percent = Bool(False, help="scores as percentages, every maximum 100").tag(config=True)
    columns = Dict(value_trait=Unicode(), default_value={},
                   help="assignment id -> its title (or 'Title (id)' header) in the "
                   "LMS").tag(config=True)

    def export(self, gradebook) -> None:
        roster = read_roster(Path(self.roster)) if self.roster else None
        check_roster_fits(self.lms, roster)
        names = {s.id: (s.first_name or "", s.last_name or "") for s in gradebook.students}
        grades = grades_in_gradebook(gradebook, [str(s) for s in self.student],
                                     [str(a) for a in self.assignment])
        table = build_table(grades, Options(roster, self.missing, self.include_pending,
                                            columns=dict(self.columns), names=names,
                                            percent=self.percent))
        dest = Path(self.to or FILES[self.lms])
        write_lms_file(self.lms, dest, table, roster)
        self.log.info("Exported %s grades to %s", self.lms, dest)
        for line in describe(table, self.include_pending) + column_warnings(table, roster):
            self.log.warning(line)


class CanvasExportPlugin(LmsExportPlugin):
    """nbgrader export --exporter=grader.records.lms_export.CanvasExportPlugin"""

    lms = CANVAS


class MoodleExportPlugin(LmsExportPlugin):
    """nbgrader export --exporter=grader.records.lms_export.MoodleExportPlugin"""

    lms = MOODLE
