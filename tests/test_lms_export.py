"""Canvas and Moodle import files (grader.lms_export) against their documented layouts.

Canvas: header Student, ID, SIS User ID, SIS Login ID, Section, then one column per assignment;
second row "Points Possible". Moodle: a header row, an identifying column (Username) and one
column per grade item. Both: one row per student. (Sources cited in grader/lms_export.py.)
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grader.cli import build_parser
from grader.lms_export import CANVAS_IDENTITY, MOODLE_IDENTITY, write_canvas, write_moodle
from grader.report import GRADES_HEADER

GRADES = [  # student_id, assignment, score, max_score, needs_manual_grade, flags
    ("ann", "ex1_degradation", "7.5", "10", "false", ""),
    ("ann", "ex2_identity", "3", "6", "true", ""),
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


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_canvas_layout(workdir: Path) -> None:
    rows = _read(write_canvas(workdir))
    assert rows[0] == CANVAS_IDENTITY + ["ex1_degradation", "ex2_identity"]
    assert CANVAS_IDENTITY == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "6"]
    assert rows[2:] == [["ann", "", "", "ann", "", "7.5", "3"],
                        ["bo", "", "", "bo", "", "0", ""],
                        ["cy", "", "", "cy", "", "", "6"]]
    assert all(len(r) == len(rows[0]) for r in rows)


def test_moodle_layout(workdir: Path) -> None:
    rows = _read(write_moodle(workdir))
    assert rows[0] == MOODLE_IDENTITY + ["ex1_degradation", "ex2_identity"]
    assert rows[0][0] == "Username"
    assert [r[0] for r in rows[1:]] == ["ann", "bo", "cy"]  # one row per student
    assert rows[1][3:] == ["7.5", "3"] and rows[2][3:] == ["0", ""] and rows[3][3:] == ["", "6"]


def test_names_from_the_gradebook(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'gradebook.db'}"
    with Gradebook(url) as gb:
        gb.update_or_create_student("ann", first_name="Ann", last_name="Lee")
        gb.update_or_create_student("bo")
    canvas = _read(write_canvas(workdir, url))
    assert canvas[2][:4] == ["Lee, Ann", "", "", "ann"] and canvas[3][0] == "bo"
    moodle = _read(write_moodle(workdir, url))
    assert moodle[1][:3] == ["ann", "Ann", "Lee"] and moodle[2][:3] == ["bo", "", ""]


def test_cli_format_option() -> None:
    parse = build_parser().parse_args
    assert parse(["export", "--workdir", "w"]).formats is None
    args = parse(["export", "--workdir", "w", "--format", "canvas", "--format", "moodle"])
    assert args.formats == ["canvas", "moodle"]
    with pytest.raises(SystemExit):
        parse(["export", "--workdir", "w", "--format", "blackboard"])
