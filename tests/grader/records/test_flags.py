"""grader.records.flags, without a kernel: which flags a run report and an autograded notebook
yield, their spelling and order in the CSV, the review notes behind tamper-suspected and
verdict-mismatch, and that the autograded notebook (with its run report) is read once."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from grader.records import flags
from grader.records.flags import SubmissionContext, collect_flags, format_flags, run_flags
from grader.records.report import SubmissionGrade, write_csvs

AID = "toy"
GIVEN = "import torch"
ANSWER = "def f(x):\n    return x + 1"


def test_flag_names_are_spelled_as_the_design_says():
    # instructors' scripts filter grades.csv on these names (DESIGN.md, README)
    assert (flags.MISSING_NOTEBOOK, flags.INVALID_NOTEBOOK, flags.TIMEOUT, flags.KERNEL_DIED,
            flags.OUTPUT_TRUNCATED, flags.TAMPER_SUSPECTED, flags.GRADING_ERROR) == (
        "missing-notebook", "invalid-notebook", "timeout", "kernel-died", "output-truncated",
        "tamper-suspected", "grading-error")
    assert (flags.UNSAFE_FILE, flags.BAD_NAME, flags.DISK_LIMIT, flags.VERDICT_MISMATCH) == (
        "unsafe-file", "bad-name", "disk-limit", "verdict-mismatch")
    assert flags.NOT_GRADABLE == {"missing-notebook", "invalid-notebook"}


@pytest.mark.parametrize("report, expected", [
    ({}, []),
    ({"cell_timeouts": 0, "kernel_died": False, "output_truncated": False}, []),
    ({"cell_timeouts": 2}, ["timeout"]),
    ({"watchdog": True, "kernel_died": True}, ["timeout"]),  # the watchdog killed it
    ({"kernel_died": True}, ["kernel-died"]),
    ({"kernel_died": True, "kernel_stopped": True}, []),  # stopped by a limit: its own flag
    ({"kernel_died": True, "kernel_stopped": True, "disk_full": ["/tmp"]}, ["disk-limit"]),
    ({"output_truncated": True}, ["output-truncated"]),
    ({"disk_full": []}, []),
    ({"tamper_runtime": []}, []),
    ({"tamper_runtime": None}, []),
    ({"tamper_runtime": ["torch.allclose was replaced"]}, ["tamper-suspected"]),
    ({"cell_timeouts": 1, "kernel_died": True, "output_truncated": True, "disk_full": ["/tmp"],
      "tamper_runtime": ["x"]},
     ["timeout", "kernel-died", "output-truncated", "disk-limit", "tamper-suspected"]),
])
def test_run_flags(report, expected):
    assert run_flags(report) == expected


def test_format_flags_sorts_and_dedups():
    assert format_flags([]) == ""
    assert format_flags(["timeout"]) == "timeout"
    assert format_flags(["timeout", "kernel-died", "timeout"]) == "kernel-died;timeout"


def test_flags_column_of_grades_csv(tmp_path: Path):
    rows = [SubmissionGrade("bo", AID, 0.0, 6.5, False, ("timeout", "disk-limit", "timeout")),
            SubmissionGrade("ann", AID, 6.5, 6.5, False, ())]
    write_csvs(tmp_path, rows, [])
    lines = (tmp_path / "grades.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == ["ann,toy,6.5,6.5,false,", "bo,toy,0,6.5,false,disk-limit;timeout"]


# --------------------------------------------------------------- a submission in a course dir


def _nb(answer: str = ANSWER, outputs=(), report: dict | None = None):
    given = new_code_cell(GIVEN, metadata={"nbgrader": {"grade_id": "given", "locked": True,
                                                        "solution": False, "grade": False}})
    answer_cell = new_code_cell(answer, metadata={"nbgrader": {
        "grade_id": "answer", "solution": True, "grade": False, "locked": False}})
    test = new_code_cell("assert f(1) == 2", outputs=list(outputs), metadata={"nbgrader": {
        "grade_id": "test", "grade": True, "points": 1, "solution": False, "locked": True}})
    nb = new_notebook(cells=[given, answer_cell, test])
    if report is not None:
        nb.metadata[flags.RUN_METADATA_KEY] = report
    return nb


def _context(root: Path, *, succeeded: bool = True, log: str = "", answer: str = ANSWER,
             outputs=(), report: dict | None = None, autograded: bool = True):
    ctx = SubmissionContext(root, "ann", AID, autograde_succeeded=succeeded, log=log)
    for path, nb in ((ctx.released_notebook, _nb("raise NotImplementedError()")),
                     (ctx.submitted_notebook, _nb(answer))):
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    if autograded:
        ctx.autograded_notebook.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(_nb(answer, outputs, report), ctx.autograded_notebook)
    return ctx


def test_clean_submission_has_no_flags(tmp_path: Path):
    ctx = _context(tmp_path, report={"cell_timeouts": 0, "kernel_died": False})
    assert collect_flags(ctx) == []
    assert ctx.notes == []


@pytest.mark.parametrize("log, expected", [
    ("nbclient.exceptions.DeadKernelError: Kernel died", ["kernel-died"]),
    ("RuntimeError: Kernel died before replying to kernel_info", ["kernel-died"]),
    ("sqlite3.OperationalError: no such table", ["grading-error"]),
    ("", ["grading-error"]),
])
def test_failed_autograde(tmp_path: Path, log, expected):
    ctx = _context(tmp_path, succeeded=False, log=log, autograded=False)
    assert flags.execution_flags(ctx) == expected


def test_cell_timeout_output_is_a_timeout(tmp_path: Path):
    timeout = new_output("error", ename="CellTimeoutError", evalue="", traceback=[])
    other = new_output("error", ename="AssertionError", evalue="", traceback=[])
    assert collect_flags(_context(tmp_path / "a", outputs=[timeout])) == ["timeout"]
    assert collect_flags(_context(tmp_path / "b", outputs=[other])) == []


def test_run_report_flags_reach_the_submission(tmp_path: Path):
    ctx = _context(tmp_path, report={"output_truncated": True, "disk_full": ["/tmp"],
                                     "kernel_died": True, "kernel_stopped": True})
    assert collect_flags(ctx) == ["disk-limit", "output-truncated"]


def test_success_without_an_autograded_notebook_is_a_grading_error(tmp_path: Path):
    assert flags.execution_flags(_context(tmp_path, autograded=False)) == ["grading-error"]


def test_runtime_tamper_report_flags_and_explains(tmp_path: Path):
    ctx = _context(tmp_path, report={"tamper_runtime": ["torch.allclose was replaced"]})
    assert collect_flags(ctx) == ["tamper-suspected"]
    flags.write_review(tmp_path, "ann", AID, ctx.notes)
    note = flags.review_path(tmp_path, "ann", AID).read_text(encoding="utf-8")
    assert "at run time: torch.allclose was replaced" in note
    # graded again without it: the flag and the stale note are gone
    clean = _context(tmp_path, report={"tamper_runtime": []})
    assert collect_flags(clean) == []
    flags.write_review(tmp_path, "ann", AID, clean.notes)
    assert not flags.review_path(tmp_path, "ann", AID).exists()


def test_static_scan_flags_a_tampering_answer(tmp_path: Path):
    ctx = _context(tmp_path, answer=ANSWER + "\nimport torch\ntorch.allclose = lambda *a: True",
                   report={})
    assert collect_flags(ctx) == ["tamper-suspected"]
    assert "torch.allclose" in "".join(ctx.notes)


def test_course_library_import_is_flagged(tmp_path: Path):
    ctx = _context(tmp_path, answer="from resnet_course.models import plain_mlp", report={})
    assert collect_flags(ctx) == ["tamper-suspected"]


def test_autograded_notebook_is_read_once(tmp_path: Path, monkeypatch):
    ctx = _context(tmp_path, report={"output_truncated": True, "tamper_runtime": ["x"]})
    reads = []
    original = Path.read_text

    def counting(self, *args, **kwargs):
        reads.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    assert collect_flags(ctx) == ["output-truncated", "tamper-suspected"]
    assert reads.count(ctx.autograded_notebook) == 1


def test_verdict_flags_follow_the_tamper_reasons_in_one_note(tmp_path: Path):
    notes = ["answer: line 1: rebinds torch.allclose\n"]
    assert flags.verdict_flags([], notes) == []
    assert flags.verdict_flags(["test: kernel 1, grader 0"], notes) == ["verdict-mismatch"]
    path = flags.review_path(tmp_path, "ann", AID)
    path.parent.mkdir(parents=True)
    path.write_text("an earlier grading's note\n")
    flags.write_review(tmp_path, "ann", AID, notes)
    assert path.read_text().splitlines() == ["answer: line 1: rebinds torch.allclose",
                                             "verdict: test: kernel 1, grader 0"]


def test_the_review_note_is_not_written_through_a_link(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    path = flags.review_path(tmp_path / "DIR", "ann", AID)
    path.parent.mkdir(parents=True)
    path.symlink_to(outside)
    flags.write_review(tmp_path / "DIR", "ann", AID, ["verdict: x\n"])
    assert outside.read_text() == "keep\n" and not path.is_symlink()
    assert path.read_text() == "verdict: x\n"


def test_collect_flags_runs_the_given_checks(tmp_path: Path):
    ctx = _context(tmp_path, report={})
    checks = [lambda c: ["timeout", "b-flag"], lambda c: ("timeout",)]
    assert collect_flags(ctx, checks) == ["b-flag", "timeout"]
