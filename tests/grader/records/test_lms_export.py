"""Canvas and Moodle import files (grader.records.lms_export) against their documented layouts,
joined on the fixture rosters of tests/fixtures/lms/ and read back with a real CSV reader
(tests/lms_formats.py says what each LMS's import does with the file).

Canvas: header Student, ID, SIS User ID, SIS Login ID, Section, then one column per assignment
(the roster's "Title (id)"); second row "Points Possible". Moodle: a header row, an identifying
column and one column per grade item, each with its maximum beside it; only roster users.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from lms_formats import canvas_import, moodle_import, read_rows
from nbgrader.api import Gradebook

from grader.records.lms_export import (
    CANVAS,
    CANVAS_IDENTITY,
    MOODLE,
    MOODLE_IDENTITY,
    Grade,
    Options,
    build_table,
    column_warnings,
    read_grades,
    report_path,
    unmatched_columns,
    write_lms_file,
)
from grader.records.report import GRADES_HEADER
from grader.records.roster import RosterError, read_roster

LMS = Path(__file__).parents[2] / "fixtures" / "lms"
GRADES = [  # student_id, assignment, score, max_score, needs_manual_grade, flags
    ("ann", "ex1_degradation", "7.5", "10", "false", ""),
    ("ann", "ex2_identity", "3", "6", "true", ""),  # hand grading pending
    ("bo", "ex1_degradation", "0", "10", "false", "missing-notebook"),
    ("cy", "ex2_identity", "6", "6", "false", ""),  # cy handed in only ex2
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    with open(tmp_path / "grades.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(GRADES_HEADER)
        w.writerows(GRADES)
    return tmp_path


def write(lms: str, workdir: Path, roster=None, db_url=None, **options) -> list[list[str]]:
    names = {}
    if db_url:
        from grader.bridge.gradebook import student_names

        names = student_names(db_url, ["ann", "bo", "cy"])
    table = build_table(read_grades(workdir), Options(roster, names=names, **options))
    return read_rows(write_lms_file(lms, workdir / f"{lms}.csv", table, roster))


def test_canvas_layout_without_a_roster(workdir: Path) -> None:
    rows = write(CANVAS, workdir)
    assert rows[0] == CANVAS_IDENTITY + ["ex1_degradation", "ex2_identity"]
    assert CANVAS_IDENTITY == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "6"]
    assert rows[2:] == [["ann", "", "", "ann", "", "7.5", ""],  # ex2 pending: left empty
                        ["bo", "", "", "bo", "", "0", ""],
                        ["cy", "", "", "cy", "", "", "6"]]
    report = read_rows(report_path(workdir / "canvas.csv"))
    assert report[0] == ["student_id", "assignment", "problem"]
    assert ["ann", "ex2_identity", "hand-grading-pending"] in report
    assert ["bo", "ex2_identity", "no-hand-in"] in report


def test_pending_scores_only_when_asked(workdir: Path) -> None:
    assert write(CANVAS, workdir, include_pending=True)[2][5:] == ["7.5", "3"]
    assert write(CANVAS, workdir, missing="zero")[4][5:] == ["0", "6"]  # cy's missing ex1


def test_moodle_layout_without_a_roster(workdir: Path) -> None:
    rows = write(MOODLE, workdir)
    assert rows[0] == MOODLE_IDENTITY + ["ex1_degradation", "ex1_degradation (maximum grade)",
                                         "ex2_identity", "ex2_identity (maximum grade)"]
    assert [r[0] for r in rows[1:]] == ["ann", "bo", "cy"]  # one row per student
    assert rows[1][3:] == ["7.5", "10", "", "6"] and rows[3][3:] == ["", "10", "6", "6"]


def test_names_from_the_gradebook(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'gradebook.db'}"
    with Gradebook(url) as gb:
        gb.update_or_create_student("ann", first_name="Ann", last_name="Lee")
        gb.update_or_create_student("bo")
    canvas = write(CANVAS, workdir, db_url=url)
    assert canvas[2][:4] == ["Lee, Ann", "", "", "ann"] and canvas[3][0] == "bo"
    moodle = write(MOODLE, workdir, db_url=url)
    assert moodle[1][:3] == ["ann", "Ann", "Lee"] and moodle[2][:3] == ["bo", "", ""]


# ---- joined on the roster ----------------------------------------------------------------

TOY = [Grade("ann", "toy", 5.0, 6.5, False), Grade("502", "toy", 2.5, 6.5, False),
       Grade("cy", "toy", 4.0, 6.5, True), Grade("zed", "toy", 6.5, 6.5, False)]


def test_canvas_with_the_roster(tmp_path: Path) -> None:
    roster = read_roster(LMS / "canvas_gradebook.csv")
    table = build_table(TOY, Options(roster))
    path = write_lms_file(CANVAS, tmp_path / "grades_canvas.csv", table, roster)
    rows = read_rows(path)
    assert rows[0] == CANVAS_IDENTITY + ["Toy (1002)"]  # the roster's column: fills it
    assert rows[1] == ["Points Possible", "", "", "", "", "6.5"]
    assert rows[2:] == [["Lee, Ann", "501", "S0001", "ann", "Section A", "5"],
                        ["Okafor, Bo", "502", "S0002", "bo", "Section A", "2.5"],  # by ID
                        ["Ng, Cy", "503", "S0003", "cy", "Section B", ""],  # pending
                        ["Díaz, Dee", "504", "S0004", "dee", "Section B", ""],  # no hand-in
                        ["Wu, Eli", "505", "", "", "Section B", ""]]  # Test Student left out
    # what Canvas does with it: fills assignment 1002 for Ann and Bo, creates nothing
    assert canvas_import(path, LMS / "canvas_gradebook.csv") == {("501", "1002"): "5",
                                                                 ("502", "1002"): "2.5"}
    report = read_rows(report_path(path))[1:]
    assert sorted(report) == [["505", "toy", "no-hand-in"], ["cy", "toy", "hand-grading-pending"],
                              ["dee", "toy", "no-hand-in"], ["zed", "toy", "not-in-roster"]]
    # one student under two of the roster's ids: the first row stands, the other is reported
    table = build_table([Grade("501", "toy", 1.0, 6.5, False), Grade("ann", "toy", 5.0, 6.5,
                                                                     False)], Options(roster))
    assert table.cells["ann", "toy"] == "1" and ("ann", "toy", "same-student-twice") in table.notes


def test_assignment_titles_and_unmatched_columns(tmp_path: Path) -> None:
    """An assignment whose Canvas title is not its id: named with --column, it fills the
    roster's column; left unnamed, it is warned about (Canvas would make a new assignment)."""
    roster = read_roster(LMS / "canvas_gradebook.csv")
    grades = [Grade("ann", "toy", 5.0, 6.5, False), Grade("ann", "ex9", 7.0, 10.0, False)]
    table = build_table(grades, Options(roster))
    assert unmatched_columns(table, roster) == ["ex9"]
    assert "--column ex9=TITLE" in column_warnings(table, roster)[0]
    assert len(column_warnings(table, roster)) == 1  # toy: 6.5 points in Canvas and here
    for title in ("Exercise 9", "Exercise 9 (1009)"):
        table = build_table(grades, Options(roster, columns={"ex9": title}))
        assert unmatched_columns(table, roster) == []
        # Exercise 9 is out of 10 in Canvas and 10 here; give it 12 here and it is warned
        assert column_warnings(table, roster) == []
        twelve = build_table([Grade("ann", "ex9", 7.0, 12.0, False)],
                             Options(roster, columns={"ex9": title}))
        assert "out of 10 points in canvas, ex9 out of 12" in column_warnings(twelve, roster)[0]
        path = write_lms_file(CANVAS, tmp_path / "c.csv", table, roster)
        assert read_rows(path)[0][5:] == ["Exercise 9 (1009)", "Toy (1002)"]
        assert canvas_import(path, LMS / "canvas_gradebook.csv") == {("501", "1009"): "7",
                                                                     ("501", "1002"): "5"}


def test_canvas_import_check_catches_the_old_layout(tmp_path: Path) -> None:
    """The check is not a tautology: the file export wrote before the roster join (bare
    assignment id, student id only as SIS Login ID) makes Canvas create a new assignment."""
    path = write_lms_file(CANVAS, tmp_path / "old.csv", build_table(TOY, Options()), None)
    with pytest.raises(AssertionError, match="NEW Canvas assignment"):
        canvas_import(path, LMS / "canvas_gradebook.csv")


@pytest.mark.parametrize("roster_file, item", [("moodle_worksheet.csv", "toy"),
                                               ("moodle_gradebook.csv", "Toy")])
def test_moodle_with_the_roster(tmp_path: Path, roster_file: str, item: str) -> None:
    roster = read_roster(LMS / roster_file)
    grades = [Grade("ann@example.edu", "toy", 5.0, 6.5, False),
              Grade("S0002", "toy", 2.5, 6.5, False),  # bo under his ID number: same student
              Grade("zed@example.edu", "toy", 6.5, 6.5, False)]
    path = write_lms_file(MOODLE, tmp_path / "grades_moodle.csv",
                          build_table(grades, Options(roster, missing="zero")), roster)
    rows = read_rows(path)
    assert rows[0] == ["Email address", "Full name", item, f"{item} (maximum grade)"]
    assert column_warnings(build_table(grades, Options(roster)), roster) == []
    emails = [r[0] for r in rows[1:]]
    assert emails == ["ann@example.edu", "bo@example.edu", "cy@example.edu", "dee@example.edu"]
    users = {s.student_id: s.student_id for s in roster.students}
    imported = moodle_import(path, "Email address", users)  # no unknown user: no abort
    assert imported["ann@example.edu"] == {item: "5", f"{item} (maximum grade)": "6.5"}
    assert imported["dee@example.edu"][item] == "0"  # --missing zero
    if roster_file == "moodle_gradebook.csv":
        assert imported["bo@example.edu"][item] == "2.5"
    else:  # the worksheet has no ID number: S0002 is unknown, reported
        assert ["S0002", "toy", "not-in-roster"] in read_rows(report_path(path))


def test_percent(tmp_path: Path) -> None:
    """--percent: every score out of 100, for an item Moodle's import creates (out of 100)."""
    roster = read_roster(LMS / "moodle_worksheet.csv")
    grades = [Grade("ann@example.edu", "toy", 5.2, 6.5, False)]
    path = write_lms_file(MOODLE, tmp_path / "m.csv",
                          build_table(grades, Options(roster, percent=True)), roster)
    assert read_rows(path)[1] == ["ann@example.edu", "Ann Lee", "80", "100"]


def test_moodle_import_check_catches_unknown_users(tmp_path: Path) -> None:
    path = write_lms_file(MOODLE, tmp_path / "m.csv", build_table(TOY, Options()), None)
    with pytest.raises(AssertionError, match="unknown user"):
        moodle_import(path, "Username", {"ann": "ann"})


def test_roster_errors(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("Name,Score\nann,3\n")
    with pytest.raises(RosterError, match="none of"):
        read_roster(tmp_path / "r.csv")
    (tmp_path / "d.csv").write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                                    "\"A, B\",1,,x,\n\"C, D\",2,,x,\n")
    with pytest.raises(RosterError, match="names both"):
        read_roster(tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                                    "\"A, B\",1,,a/b,\n\"C, D\",2,,cd,\n")
    roster = read_roster(tmp_path / "e.csv")  # an id that cannot be a folder name
    assert [s.student_id for s in roster.students] == ["cd"]
    assert "no usable student id" in roster.problems[0]
    (tmp_path / "f.csv").write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                                    "\"A, B\",1,,a/b,\n")
    with pytest.raises(RosterError, match="no student with a usable id"):
        read_roster(tmp_path / "f.csv")


def test_canvas_roster_reading() -> None:
    roster = read_roster(LMS / "canvas_gradebook.csv")
    assert roster.lms == CANVAS and roster.id_column == "SIS Login ID"
    # Eli has no SIS login: his Canvas ID; Canvas's Student View user is not in the class
    assert [s.student_id for s in roster.students] == ["ann", "bo", "cy", "dee", "505"]
    assert roster.assignment_columns == {"Toy": "Toy (1002)", "Exercise 9": "Exercise 9 (1009)"}
    assert roster.points == {"Toy (1002)": 6.5, "Exercise 9 (1009)": 10.0}
    assert roster.find("S0003").student_id == "cy" and roster.find("503").student_id == "cy"
    assert roster.find("Section A") is None  # a section is not an id


def test_nbgrader_export_plugin(tmp_path: Path, monkeypatch) -> None:
    """`nbgrader export --exporter=grader.records.lms_export.CanvasExportPlugin`, through nbgrader's
    ExportApp on a toy gradebook."""
    from nbgrader.apps import ExportApp
    from toy_gradebook import add_submission, make_course

    url = make_course(tmp_path)
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 1.5}, manual={"answer_text": 3.0})
    add_submission(url, "bo", {"test_b": 2.0, "test_a": 0.0})  # written answer not graded
    with Gradebook(url) as gb:
        gb.update_or_create_student("ann", first_name="Ann", last_name="Lee")
    monkeypatch.chdir(tmp_path)
    for plugin, to, roster in (("CanvasExportPlugin", "canvas.csv", "canvas_gradebook.csv"),
                               ("MoodleExportPlugin", "moodle.csv", "moodle_gradebook.csv"),
                               ("CanvasExportPlugin", "bare.csv", None)):
        app = ExportApp()
        app.initialize([f"--CourseDirectory.root={tmp_path}", f"--db={url}",
                        f"--exporter=grader.records.lms_export.{plugin}", f"--to={to}"]
                       + ([f"--{plugin}.roster={LMS / roster}"] if roster else []))
        app.start()
    bare = read_rows(tmp_path / "bare.csv")  # no roster: names from nbgrader's gradebook
    assert [r[:4] for r in bare[2:]] == [["Lee, Ann", "", "", "ann"], ["bo", "", "", "bo"]]
    canvas = read_rows(tmp_path / "canvas.csv")
    assert canvas[0][-1] == "Toy (1002)"
    assert [r[3:] for r in canvas[2:]] == [["ann", "Section A", "6.5"],
                                           ["bo", "Section A", ""],  # pending: left empty
                                           ["cy", "Section B", ""], ["dee", "Section B", ""],
                                           ["", "Section B", ""]]
    assert canvas_import(tmp_path / "canvas.csv",
                         LMS / "canvas_gradebook.csv") == {("501", "1002"): "6.5"}
    moodle = read_rows(tmp_path / "moodle.csv")
    assert [r[0] for r in moodle[1:]] == ["ann@example.edu", "bo@example.edu",
                                          "cy@example.edu", "dee@example.edu"]
    # ann and bo are nbgrader ids the Moodle roster does not know: reported, not dropped
    report = read_rows(tmp_path / "moodle_report.csv")
    assert ["ann", "toy", "not-in-roster"] in report and ["bo", "toy", "not-in-roster"] in report
