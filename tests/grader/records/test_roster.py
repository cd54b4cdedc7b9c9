"""grader/records/roster.py: the class roster read from an LMS's own export (Canvas gradebook,
Moodle grading worksheet, Moodle gradebook), told apart by the header. Small files written
here; the recorded real exports in tests/fixtures/lms/ are read by test_collect and
test_lms_export."""

from pathlib import Path

import pytest

from grader.records.roster import CANVAS, MOODLE, RosterError, name_key, read_roster

CANVAS_CSV = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Exercise 2 (1002),Current Score\n"
    "    Points Possible,,,,,10.00,(read only)\n"
    ",,,,,Manual Posting,\n"
    '"Lee, Ann",101,S1,alee,A,,\n'
    '"Kim, Bo",102,,,A,,\n'
    '"Student, Test",999,,,A,,\n')
WORKSHEET_CSV = (
    "Identifier,Full name,Email address,Status,Grade,Maximum Grade\n"
    "Participant 5001,Ann Lee,ann@uni.edu,Submitted,,10\n"
    "Participant 5002,Bo Kim,bo@uni.edu,Submitted,,10\n")
GRADEBOOK_CSV = (
    "First name,Last name,Username,ID number,Institution,Department,Email address,"
    "Assignment: Ex2 Identity (Real)\n"
    "Ann,Lee,alee,7,U,D,ann@uni.edu,\n"
    "Zoë,Kim,,8,U,D,zoe@uni.edu,\n")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_canvas_gradebook(tmp_path):
    roster = read_roster(write(tmp_path, CANVAS_CSV))
    assert (roster.lms, roster.kind) == (CANVAS, "canvas gradebook")
    # the login where there is one, else Canvas's numeric id; no points row, no test student
    assert [(s.student_id, s.lms_id) for s in roster.students] == [("alee", "101"),
                                                                   ("102", "102")]
    ann = roster.students[0]
    assert ann.aliases == {"alee", "101", "S1"}
    assert roster.find("S1") is ann and roster.find("101") is ann and roster.find("x") is None
    assert roster.by_lms_id("102").student_id == "102"
    assert roster.assignment_columns == {"Exercise 2": "Exercise 2 (1002)"}
    assert roster.column_for("exercise_2") == "Exercise 2 (1002)"
    assert roster.points == {"Exercise 2 (1002)": 10.0}
    assert roster.by_name("ann lee") == [ann]  # "Lee, Ann" read as first name, last name


def test_moodle_worksheet(tmp_path):
    roster = read_roster(write(tmp_path, WORKSHEET_CSV))
    assert (roster.lms, roster.kind, roster.id_column) == (MOODLE, "moodle worksheet",
                                                           "Email address")
    assert [(s.student_id, s.lms_id, s.name) for s in roster.students] == [
        ("ann@uni.edu", "5001", "Ann Lee"), ("bo@uni.edu", "5002", "Bo Kim")]


def test_moodle_gradebook_takes_the_first_column_every_student_has(tmp_path):
    roster = read_roster(write(tmp_path, GRADEBOOK_CSV))
    assert roster.kind == "moodle gradebook"
    assert roster.id_column == "Email address"  # Zoë has no Username
    assert [s.student_id for s in roster.students] == ["ann@uni.edu", "zoe@uni.edu"]
    assert roster.students[0].lms_id == ""  # the gradebook export has no participant id
    assert roster.column_for("ex2_identity") == "Assignment: Ex2 Identity (Real)"
    assert roster.by_name("Zoe KIM") == [roster.students[1]]  # accents and case set aside


def test_unusable_ids_are_problems_not_students(tmp_path):
    text = WORKSHEET_CSV + "Participant 5003,Eve,bad id@x,Submitted,,10\n"
    text = text.replace("Email address", "Username", 1)
    roster = read_roster(write(tmp_path, text))
    assert [s.student_id for s in roster.students] == ["ann@uni.edu", "bo@uni.edu"]
    assert len(roster.problems) == 1 and "Eve" in roster.problems[0]


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("Name,Grade\nAnn,1\n", "is none of"),
    ("Identifier,Full name,Email address\nParticipant 1,Eve,\n", "no student with a usable id"),
    (WORKSHEET_CSV + "Participant 5009,Ann Two,ann@uni.edu,Submitted,,10\n", "names both"),
])
def test_refused_rosters(tmp_path, text, why):
    with pytest.raises(RosterError, match=why):
        read_roster(write(tmp_path, text))


def test_a_link_is_not_read(tmp_path):
    (tmp_path / "link.csv").symlink_to(write(tmp_path, WORKSHEET_CSV))
    with pytest.raises(RosterError, match="cannot read"):
        read_roster(tmp_path / "link.csv")


def test_name_key():
    assert name_key("  Zoë  O'Brien-Smith ") == "zoe o brien smith"
    assert name_key("Ex2 Identity") == name_key("ex2_identity")
