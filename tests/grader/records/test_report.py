"""grader.records.report without a kernel: grades.csv, grades_by_cell.csv and review.csv from a toy
SQLite gradebook (tests/toy_gradebook.py): columns, number format, notebook order, one row per
submission, refused rows, hand grades counted, and one gradebook opened per run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from toy_gradebook import AID, MAX_SCORE, add_submission, make_course

from grader.records import report
from grader.records.flags import review_path
from grader.records.report import (
    CELLS_HEADER,
    GRADES_HEADER,
    REVIEW_HEADER,
    SubmissionGrade,
    load_run_record,
    number,
    refused_as_json,
    refused_rows_from,
    save_run_record,
    write_placeholder_feedback,
    write_reports,
    write_review_list,
)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, str]:
    url = make_course(tmp_path)
    # ann: test_b passed, test_a failed, written answer graded 2.5 by hand
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0}, manual={"answer_text": 2.5})
    # bo: only test_a passed; the written answer still waits for a hand grade
    add_submission(url, "bo", {"test_b": 0.0, "test_a": 1.5})
    return tmp_path, url


def test_headers_are_the_design_contract():
    assert GRADES_HEADER == ["student_id", "assignment", "score", "max_score",
                             "needs_manual_grade", "flags"]
    assert CELLS_HEADER == ["student_id", "assignment", "notebook", "grade_id", "score",
                            "max_score"]
    assert REVIEW_HEADER == ["student_id", "assignment", "flags", "details"]


@pytest.mark.parametrize("value, text", [(3.0, "3"), (2.5, "2.5"), (0.0, "0"), (6.5, "6.5"),
                                         (1 / 3, "0.333333"), (2.0000001, "2"),
                                         (10.0, "10"), (100.25, "100.25"),
                                         (12.3456789, "12.345679"), (1234567.5, "1234567.5"),
                                         (1e-7, "0")])  # six decimals, never an exponent
def test_number_format(value, text):
    assert number(value) == text


def test_grades_csv_from_the_gradebook(course):
    root, url = course
    refused = SubmissionGrade("bad_name", AID, 0.0, MAX_SCORE, False, ("bad-name",))
    write_reports(url, root, [("bo", AID, ["timeout"]), ("ann", AID, [])], extra=[refused])
    assert _rows(root / "grades.csv") == [
        GRADES_HEADER,
        ["ann", AID, "4.5", "6.5", "false", ""],  # hand grade counts: 2 + 2.5 + 0
        ["bad_name", AID, "0", "6.5", "false", "bad-name"],  # refused: never in the gradebook
        ["bo", AID, "1.5", "6.5", "true", "timeout"],  # written answer not graded yet
    ]


def test_grades_by_cell_follow_the_notebook(course):
    root, url = course
    write_reports(url, root, [("bo", AID, []), ("ann", AID, [])])
    assert _rows(root / "grades_by_cell.csv") == [
        CELLS_HEADER,
        # notebook order (test_b, answer_text, test_a), not alphabetical
        ["ann", AID, AID, "test_b", "2", "2"],
        ["ann", AID, AID, "answer_text", "2.5", "3"],
        ["ann", AID, AID, "test_a", "0", "1.5"],
        ["bo", AID, AID, "test_b", "0", "2"],
        ["bo", AID, AID, "answer_text", "0", "3"],
        ["bo", AID, AID, "test_a", "1.5", "1.5"],
    ]


def test_read_cell_grades(course):
    root, url = course
    cells = report.read_cell_grades(url, root, "ann", AID)
    assert [(c.grade_id, c.score, c.max_score, c.auto_score, c.needs_manual_grade)
            for c in cells] == [("test_b", 2.0, 2.0, 2.0, False),
                                ("answer_text", 2.5, 3.0, None, False),
                                ("test_a", 0.0, 1.5, 0.0, False)]


def test_one_row_per_submission(course):
    root, url = course
    write_reports(url, root, [("ann", AID, []), ("bo", AID, [])])
    rows = _rows(root / "grades.csv")[1:]
    assert sorted(r[0] for r in rows) == ["ann", "bo"]
    assert len(_rows(root / "grades_by_cell.csv")) == 1 + 2 * 3


def test_write_reports_opens_the_gradebook_once(course, monkeypatch):
    root, url = course
    opened = []
    original = report.gradebook.open_gradebook

    def counting(db_url):
        opened.append(db_url)
        return original(db_url)

    monkeypatch.setattr(report.gradebook, "open_gradebook", counting)
    write_reports(url, root, [("ann", AID, []), ("bo", AID, [])])
    assert opened == [url]


def test_review_csv(tmp_path: Path):
    note = review_path(tmp_path, "bo", AID)
    note.parent.mkdir(parents=True)
    note.write_text("answer: line 2: rebinds torch.allclose\n")
    write_review_list(tmp_path, [("bo", AID, "tamper-suspected;timeout"),
                                 ("ann", AID, "missing-notebook")])
    assert _rows(tmp_path / "review.csv") == [
        REVIEW_HEADER,
        ["ann", AID, "missing-notebook", ""],  # no note: nothing more to read
        ["bo", AID, "tamper-suspected;timeout", f"review/bo/{AID}.txt"],
    ]


def test_run_record_round_trip(tmp_path: Path):
    refused = [SubmissionGrade("bad", AID, 0.0, 6.5, False, ("bad-name",))]
    submissions = [{"student_id": "ann", "assignment_id": AID, "flags": ["timeout"],
                    "autograded": True}]
    save_run_record(tmp_path, "sqlite:///x.db", submissions, refused)
    assert load_run_record(tmp_path) == ("sqlite:///x.db", submissions)
    stored = json.loads((tmp_path / report.RUN_RECORD).read_text())
    assert refused_rows_from(stored["refused"]) == refused
    assert refused_rows_from(refused_as_json(refused)) == refused


def test_no_run_record_says_what_to_do(tmp_path: Path):
    with pytest.raises(ValueError, match="autograde SUBMISSIONS --workdir DIR"):
        load_run_record(tmp_path)


def test_placeholder_feedback_escapes_names(tmp_path: Path):
    path = tmp_path / "feedback.html"
    write_placeholder_feedback(path, "<script>x</script>", AID, "no <b>notebook</b>")
    text = path.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "no &lt;b&gt;notebook&lt;/b&gt;" in text
