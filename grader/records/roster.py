"""The class roster, read from the LMS's own export: who is in the class, under which ids.

`collect` uses it to map each file of an LMS submissions download to a student, and `export
--roster` to fill the LMS's identity columns and assignment ids. Three files are understood,
told apart by their header row (all read with a real CSV reader, a UTF-8 byte-order mark
allowed, as both LMSs write one):

* **Canvas gradebook export** (Grades > Export > Export Entire Gradebook). Header `Student, ID,
  SIS User ID, SIS Login ID, [Integration ID,] Section`, then one column per assignment named
  `Title (canvas assignment id)`, then read-only totals (`Current Score`, ...); the second row
  is `    Points Possible` (leading spaces as Canvas writes them), and a row of posting
  policies (`Manual Posting`) may follow. Sources: Canvas Instructor Guide, "How do I export
  grades in the Gradebook?" and "How do I import grades in the Gradebook?"
  (https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807);
  instructure/canvas-lms, app/models/gradebook_importer.rb and lib/gradebook_exporter.rb.
  `ID` is Canvas's numeric user id, the one in submissions downloads.
* **Moodle grading worksheet** (Assignment > Submissions > Download grading worksheet). Header
  `Identifier, Full name, Email address, Status, Grade, Maximum Grade, ...`; `Identifier` is
  `Participant <participant id>`, the id Moodle puts in "Download all submissions" names
  (mod/assign/locallib.php: get_uniqueid_for_user). Source: MoodleDocs "Assignment settings /
  Offline grading worksheet" (https://docs.moodle.org/en/Using_Assignment).
* **Moodle gradebook export** (Grades > Export > Plain text file). Header `First name, Last
  name, [Username,] ID number, Institution, Department, Email address`, then `<Item> (Real)`
  columns. It holds no participant id, so a download is matched on the full name
  (ambiguous names are reported). Source: MoodleDocs "Grade export"
  (https://docs.moodle.org/en/Grade_export), grade/export/lib.php (profile fields
  `grade_export_userprofilefields`, default firstname,lastname,idnumber,institution,department,
  email).

Each student gets one `student_id`, the SUBMISSIONS folder name and nbgrader id: in Canvas
the student's `SIS Login ID`, else their numeric `ID`; in Moodle one column for the whole file
(the Moodle import maps one user field), the first that every student has of `Username`,
`Email address`, `ID number`. Every other
id the roster gives names the same student (`aliases`), so grades under any of them join.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from grader.files import name_problem, read_bytes

CANVAS, MOODLE = "canvas", "moodle"
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s+\((?P<id>\d+)\)$")  # "Exercise 2 (1002)"
MOODLE_PARTICIPANT = re.compile(r"^\D*?(\d+)$")  # "Participant 123456" (word translated)
MOODLE_ITEM = re.compile(r"^(?:[^:]+:\s*)?(?P<title>.*?)\s*\((?:Real|Percentage|Letter)\)$")
MAX_ROSTER_BYTES = 32 * 1024**2
# the columns whose values name one student (grades under any of them join that student)
ID_COLUMNS = ("ID", "SIS User ID", "SIS Login ID", "Integration ID", "Username", "ID number",
              "Email address")


class RosterError(ValueError):
    """The roster file cannot be read; the message says why."""


@dataclass(frozen=True)
class RosterStudent:
    student_id: str       # SUBMISSIONS/<student_id>/, the nbgrader student id
    name: str             # as the LMS shows it ("Lee, Ann" in Canvas, "Ann Lee" in Moodle)
    lms_id: str           # Canvas user id / Moodle participant id ('' when the file has none)
    fields: dict[str, str] = field(hash=False)  # the roster's identity columns, as read
    aliases: frozenset[str] = frozenset()       # every id that names this student


@dataclass
class Roster:
    lms: str                         # CANVAS or MOODLE
    kind: str                        # "canvas gradebook", "moodle worksheet", "moodle gradebook"
    students: list[RosterStudent]
    assignment_columns: dict[str, str]   # assignment title -> the LMS's column header
    identity: list[str]              # the identity column names, in the file's order
    id_column: str                   # the column student ids come from (Canvas: mostly)
    problems: list[str] = field(default_factory=list)  # rows that give no usable student id
    points: dict[str, float] = field(default_factory=dict)  # column header -> points possible

    def find(self, any_id: str) -> RosterStudent | None:
        """The student that `any_id` (student id, LMS id, SIS id, login, e-mail) names."""
        for s in self.students:
            if any_id == s.student_id or any_id in s.aliases:
                return s
        return None

    def by_lms_id(self, lms_id: str) -> RosterStudent | None:
        return next((s for s in self.students if s.lms_id and s.lms_id == lms_id), None)

    def by_name(self, name: str) -> list[RosterStudent]:
        """Students whose full name equals `name` once case, accents, punctuation and spacing
        are set aside (Moodle's clean_filename drops some characters of names)."""
        key = name_key(name)
        return [s for s in self.students if name_key(_full_name(s)) == key]

    def column_for(self, assignment_id: str) -> str | None:
        """The LMS's column for an assignment whose title is `assignment_id` (compared as
        name_key, so "Ex2 Identity" names ex2_identity), or None."""
        key = name_key(assignment_id)
        hits = [h for t, h in self.assignment_columns.items() if name_key(t) == key]
        return hits[0] if len(hits) == 1 else None


def name_key(text: str) -> str:
    """Lower-case ASCII letters and digits, one space between words."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _full_name(s: RosterStudent) -> str:
    if "," in s.name and s.fields.get("Student"):  # Canvas "Last, First"
        last, first = s.name.split(",", 1)
        return f"{first} {last}"
    return s.name


def read_roster(path: Path) -> Roster:
    """The roster in `path` (any of the three files above); RosterError if it is none."""
    try:
        text = read_bytes(path, limit=MAX_ROSTER_BYTES).decode("utf-8-sig")
    except (OSError, ValueError) as err:
        raise RosterError(f"cannot read roster {path}: {err}") from None
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    if not rows:
        raise RosterError(f"roster {path} is empty")
    header = [h.strip() for h in rows[0]]
    if header[:2] == ["Student", "ID"]:
        roster = _canvas(header, rows[1:])
    elif "Identifier" in header and "Full name" in header:
        roster = _moodle_worksheet(header, rows[1:])
    elif "First name" in header and "Last name" in header:
        roster = _moodle_gradebook(header, rows[1:])
    else:
        raise RosterError(
            f"roster {path}: header {header[:6]} is none of Canvas's gradebook export "
            "(Student, ID, ...), Moodle's grading worksheet (Identifier, Full name, ...) or "
            "Moodle's gradebook export (First name, Last name, ...)")
    if not roster.students:
        raise RosterError(f"roster {path} lists no student with a usable id"
                          + "".join(f"\n  {p}" for p in roster.problems[:10]))
    _refuse_duplicates(path, roster)
    return roster


def _records(header: list[str], rows: list[list[str]]) -> list[dict[str, str]]:
    return [{h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
            for row in rows]


def _id_column(records: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    """The first of `columns` that every student has a value in (one column for the whole
    class, so the LMS import maps one field), else the first the file has at all."""
    present = [c for c in columns if records and c in records[0]]
    full = [c for c in present if all(r[c] for r in records)]
    return (full or present or [columns[0]])[0]


def _student(record: dict[str, str], identity: list[str], student_id: str, name: str,
             lms_id: str, problems: list[str]) -> RosterStudent | None:
    why = name_problem(student_id) if student_id else "no id"
    if why:
        problems.append(f"{name or '?'}: no usable student id ({why}: {student_id!r})")
        return None
    fields = {c: record.get(c, "") for c in identity}
    aliases = frozenset(record[c] for c in ID_COLUMNS if record.get(c)) | {student_id}
    return RosterStudent(student_id, name, lms_id, fields, aliases)


def _canvas(header: list[str], rows: list[list[str]]) -> Roster:
    # identity columns: everything before the first assignment-like column, in Canvas's order
    identity = [h for h in header if h in CANVAS_IDENTITY + ["Integration ID"]]
    columns = {m["title"]: h for h in header if (m := CANVAS_ASSIGNMENT.match(h))}
    records = [r for r in _records(header, rows)
               if "Points Possible" not in r["Student"] and r["ID"]  # the points row, the
               and not _canvas_test_student(r)]  # posting-policy row (no ID), Student View
    students, problems = [], []
    for record in records:  # the login where the student has one (per student: Canvas
        # finds a row by ID, SIS User ID or SIS Login ID alike)
        s = _student(record, identity, record.get("SIS Login ID") or record["ID"],
                     record["Student"], record["ID"], problems)
        if s:
            students.append(s)
    return Roster(CANVAS, "canvas gradebook", students, columns, identity, "SIS Login ID",
                  problems, _canvas_points(header, rows, set(columns.values())))


def _canvas_points(header: list[str], rows: list[list[str]], columns: set[str]) -> dict:
    """The "Points Possible" row: assignment column header -> its points in Canvas."""
    for record in _records(header, rows):
        if "Points Possible" in record["Student"]:
            points = {}
            for h in columns:
                try:
                    points[h] = float(record[h])
                except ValueError:
                    pass
            return points
    return {}


def _canvas_test_student(record: dict[str, str]) -> bool:
    """Canvas's Student View user ("Student, Test"), in the export but not in the class."""
    return (record["Student"] in ("Student, Test", "Test Student")
            and not record.get("SIS User ID") and not record.get("SIS Login ID"))


def _moodle_worksheet(header: list[str], rows: list[list[str]]) -> Roster:
    identity = [h for h in ("Identifier", "Full name", "Email address") if h in header]
    records = _records(header, rows)
    id_column = _id_column(records, ("Username", "Email address"))
    students, problems = [], []
    for record in records:
        m = MOODLE_PARTICIPANT.match(record["Identifier"])
        s = _student(record, identity, record.get(id_column, ""), record["Full name"],
                     m.group(1) if m else "", problems)
        if s:
            students.append(s)
    return Roster(MOODLE, "moodle worksheet", students, {}, identity, id_column, problems)


def _moodle_gradebook(header: list[str], rows: list[list[str]]) -> Roster:
    identity = [h for h in ("First name", "Last name", "Username", "ID number",
                            "Email address") if h in header]
    columns = {m["title"]: h for h in header if (m := MOODLE_ITEM.match(h))}
    records = _records(header, rows)
    id_column = _id_column(records, ("Username", "Email address", "ID number"))
    students, problems = [], []
    for record in records:
        s = _student(record, identity, record.get(id_column, ""),
                     f"{record['First name']} {record['Last name']}".strip(), "", problems)
        if s:
            students.append(s)
    return Roster(MOODLE, "moodle gradebook", students, columns, identity, id_column,
                  problems)


def _refuse_duplicates(path: Path, roster: Roster) -> None:
    seen: dict[str, str] = {}
    for s in roster.students:
        if s.student_id in seen:
            raise RosterError(f"roster {path}: student id {s.student_id!r} names both "
                              f"{seen[s.student_id]!r} and {s.name!r}")
        seen[s.student_id] = s.name
