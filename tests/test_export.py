"""grader.export without a kernel: after hand grading, `export` rewrites the CSVs from the
gradebook for the submissions and flags of the last run (refused rows kept), and regenerates
feedback only for autograded submissions (nbgrader's GenerateFeedback replaced by a stand-in
that records its calls)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from toy_gradebook import AID, add_submission, make_course

from grader import export as export_module
from grader.course import CourseLayout
from grader.export import export
from grader.gradebook import open_gradebook
from grader.lms_export import CANVAS_FILE, MOODLE_FILE
from grader.report import SubmissionGrade, save_run_record
from grader.shard import Shard, save_shard_record


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
    export(root, log=lambda line: None, formats=("csv", "canvas", "moodle"))
    canvas, moodle = _rows(root / CANVAS_FILE), _rows(root / MOODLE_FILE)
    assert [r[3] for r in canvas[2:]] == ["ann", "bad_x", "bo"]  # SIS Login ID column
    assert [r[0] for r in moodle[1:]] == ["ann", "bad_x", "bo"]


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
