"""grader.commands.export without a kernel: after hand grading, `export` rewrites the CSVs from the
gradebook for the submissions and flags of the last run (refused rows kept), and regenerates
feedback only for autograded submissions (nbgrader's GenerateFeedback replaced by a stand-in
that records its calls)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import TOY
from lms_downloads import CANVAS_MEMBERS, MOODLE_MEMBERS, make_zip
from lms_formats import canvas_import, moodle_import
from toy_gradebook import AID, add_submission, make_course

from grader.bridge.course import CourseLayout
from grader.bridge.gradebook import open_gradebook
from grader.commands import export as export_module
from grader.commands.cli import main
from grader.commands.export import ExportRefused, export
from grader.records.collect import collect
from grader.records.lms_export import CANVAS_FILE, MOODLE_FILE
from grader.records.report import SubmissionGrade, save_run_record
from grader.records.roster import read_roster
from grader.records.shard import Shard, save_shard_record

LMS = Path(__file__).parents[2] / "fixtures" / "lms"


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture
def work(tmp_path: Path, monkeypatch):
    """A finished run: ann autograded (timeout flag), bo's notebook missing (not autograded),
    one refused folder; generate_feedback recorded instead of run."""
    url = make_course(tmp_path)
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0})
    add_submission(url, "bo", {"test_b": 0.0, "test_a": 0.0})
    save_run_record(tmp_path, url, [
        {"student_id": "ann", "assignment_id": AID, "flags": ["timeout"], "autograded": True},
        {"student_id": "bo", "assignment_id": AID, "flags": ["missing-notebook"],
         "autograded": False}],
        [SubmissionGrade("bad_x", AID, 0.0, 6.5, False, ("bad-name",))])
    calls = []

    def fake_feedback(settings, student_id, assignment_id):
        calls.append((student_id, assignment_id, settings.sandbox))
        return True, "log text"

    monkeypatch.setattr(export_module, "generate_feedback", fake_feedback)
    return tmp_path, url, calls


def test_export_rewrites_csvs_with_hand_grades(work):
    root, url, calls = work
    with open_gradebook(url) as gb:  # the instructor grades ann's written answer in formgrader
        grade = gb.find_grade("answer_text", AID, AID, "ann")
        grade.manual_score, grade.needs_manual_grade = 3.0, False
        gb.db.commit()
    log = []
    assert export(root, log=log.append) == []
    assert _rows(root / "grades.csv")[1:] == [
        ["ann", AID, "5", "6.5", "false", "timeout"],
        ["bad_x", AID, "0", "6.5", "false", "bad-name"],
        ["bo", AID, "0", "6.5", "true", "missing-notebook"],
    ]
    assert ["ann", AID, AID, "answer_text", "3", "3"] in _rows(root / "grades_by_cell.csv")
    assert [r[:3] for r in _rows(root / "review.csv")[1:]] == [
        ["ann", AID, "timeout"], ["bad_x", AID, "bad-name"], ["bo", AID, "missing-notebook"]]
    # feedback again for the autograded submission only, with no sandbox (no student code)
    assert calls == [("ann", AID, False)]
    assert any("feedback ann/toy" in line for line in log)


def test_export_reports_failed_feedback(work, monkeypatch):
    root, url, calls = work
    monkeypatch.setattr(export_module, "generate_feedback",
                        lambda settings, s, a: (False, "Traceback: broken"))
    log = []
    assert export(root, log=log.append) == [("ann", AID)]
    assert any("feedback for ann/toy failed" in line and "broken" in line for line in log)


def test_export_writes_lms_files(work):
    root, url, _ = work
    with open_gradebook(url) as gb:
        gb.update_or_create_student("ann", first_name="Ann", last_name="Lee")
    log = []
    export(root, log=log.append, formats=("csv", "canvas", "moodle"))
    canvas, moodle = _rows(root / CANVAS_FILE), _rows(root / MOODLE_FILE)
    assert [r[3] for r in canvas[2:]] == ["ann", "bad_x", "bo"]  # SIS Login ID column
    assert canvas[2][0] == "Lee, Ann" and moodle[1][:3] == ["ann", "Ann", "Lee"]
    assert [r[0] for r in moodle[1:]] == ["ann", "bad_x", "bo"]
    # ann's and bo's written answers are not graded yet: warned, LMS cells left empty
    assert any(line.startswith("warning: hand grading is pending for 2") for line in log)
    assert [r[5] for r in canvas[2:]] == ["", "0", ""]
    assert any("unknown to it" in line for line in log)  # Moodle without a roster


def test_export_final_refuses_while_hand_grading_is_pending(work, monkeypatch, capsys):
    root, url, calls = work
    with pytest.raises(ExportRefused, match="pending for 2 submission"):
        export(root, log=lambda line: None, formats=("csv", "canvas"), final=True)
    assert not (root / CANVAS_FILE).exists() and calls == []
    argv = ["export", "--workdir", str(root), "--root", str(TOY), "--format", "canvas"]
    assert main(argv + ["--final"]) == 1
    assert "--final: hand grading is pending" in capsys.readouterr().err
    for student in ("ann", "bo"):  # the instructor grades both written answers
        with open_gradebook(url) as gb:
            grade = gb.find_grade("answer_text", AID, AID, student)
            grade.manual_score, grade.needs_manual_grade = 1.0, False
            gb.db.commit()
    assert main(argv + ["--final"]) == 0
    assert [r[5] for r in _rows(root / CANVAS_FILE)[2:]] == ["3", "0", "1"]


def _graded_class(tmp_path: Path, submissions: Path, monkeypatch) -> tuple[Path, str]:
    """A finished autograde of every hand-in `collect` placed in SUBMISSIONS (kernel-free:
    the toy gradebook's scores stand in for nbgrader's), written answers graded by hand."""
    work = tmp_path / "work"
    work.mkdir()
    url = make_course(work)
    students = sorted(p.name for p in submissions.iterdir())
    for i, student in enumerate(students):
        add_submission(url, student, {"test_b": 2.0, "test_a": 1.5 * (i % 2)},
                       manual={"answer_text": 3.0})
    save_run_record(work, url, [{"student_id": s, "assignment_id": AID, "flags": [],
                                 "autograded": True} for s in students])
    monkeypatch.setattr(export_module, "generate_feedback", lambda settings, s, a: (True, ""))
    return work, url


def test_canvas_round_trip(tmp_path: Path, monkeypatch):
    """Canvas download -> collect -> (grading) -> export --roster: a file Canvas's import
    reads into the existing assignment, with every roster student present."""
    roster = LMS / "canvas_gradebook.csv"
    subs = tmp_path / "SUBMISSIONS"
    collect(make_zip(tmp_path / "dl.zip", CANVAS_MEMBERS), read_roster(roster), AID, subs)
    work, _ = _graded_class(tmp_path, subs, monkeypatch)
    export(work, log=lambda line: None, formats=("csv", "canvas"), roster=roster,
           missing="zero", final=True)
    rows = _rows(work / CANVAS_FILE)
    assert [r[0] for r in rows[2:]] == ["Lee, Ann", "Okafor, Bo", "Ng, Cy", "Díaz, Dee",
                                        "Wu, Eli"]
    assert canvas_import(work / CANVAS_FILE, roster) == {
        ("501", "1002"): "6.5", ("502", "1002"): "5", ("503", "1002"): "6.5",
        ("504", "1002"): "0",  # dee handed nothing in: 0 with --missing zero
        ("505", "1002"): "5"}  # eli, collected under his Canvas ID


def test_moodle_round_trip(tmp_path: Path, monkeypatch):
    roster = LMS / "moodle_worksheet.csv"
    subs = tmp_path / "SUBMISSIONS"
    collect(make_zip(tmp_path / "dl.zip", MOODLE_MEMBERS), read_roster(roster), AID, subs)
    work, url = _graded_class(tmp_path, subs, monkeypatch)
    add_submission(url, "stray", {"test_b": 2.0}, manual={"answer_text": 3.0})
    save_run_record(work, url, [{"student_id": s, "assignment_id": AID, "flags": [],
                                 "autograded": True} for s in
                                ["ann@example.edu", "bo@example.edu", "cy@example.edu",
                                 "stray"]])
    log = []
    export(work, log=log.append, formats=("csv", "moodle"), roster=roster)
    users = {s.student_id: s.student_id for s in read_roster(roster).students}
    imported = moodle_import(work / MOODLE_FILE, "Email address", users)
    assert imported == {"ann@example.edu": {AID: "5", f"{AID} (maximum grade)": "6.5"},
                        "bo@example.edu": {AID: "6.5", f"{AID} (maximum grade)": "6.5"},
                        "cy@example.edu": {AID: "5", f"{AID} (maximum grade)": "6.5"},
                        "dee@example.edu": {f"{AID} (maximum grade)": "6.5"}}
    assert any("not in the roster left out: stray/toy" in line for line in log)
    assert not any("has no column" in line for line in log)  # a worksheet has no item columns
    with pytest.raises(ValueError, match="needs a canvas roster"):
        export(work, log=log.append, formats=("csv", "canvas"), roster=roster)
    with pytest.raises(ValueError, match="--roster is for the LMS files"):
        export(work, log=log.append, roster=roster)


def test_export_joins_the_shards(work):
    root, url, calls = work
    CourseLayout(root).run_record().unlink()
    save_shard_record(root, url, Shard(0, 2), [
        {"student_id": "ann", "assignment_id": AID, "flags": [], "autograded": True}])
    with pytest.raises(ValueError, match="1/2"):
        export(root, log=lambda line: None)  # shard 1 has not finished
    save_shard_record(root, url, Shard(1, 2), [
        {"student_id": "bo", "assignment_id": AID, "flags": [], "autograded": True}])
    export(root, log=lambda line: None)
    assert [r[0] for r in _rows(root / "grades.csv")[1:]] == ["ann", "bo"]
    assert sorted(c[0] for c in calls) == ["ann", "bo"]


def test_export_without_a_run(tmp_path: Path):
    with pytest.raises(ValueError, match="no finished autograde run"):
        export(tmp_path, log=lambda line: None)
