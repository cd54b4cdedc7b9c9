"""grader.commands.check: the solution scores full marks, the untouched release 0, exercises/
is the release. Its report (one line per autograded cell, the problems, the verdict line) is
pinned with autograde and the gradebook faked; the real runs on the toy course and on the
course's own assignments are marked slow (each grades two hand-ins per assignment)."""

from __future__ import annotations

import nbformat
import pytest
from conftest import REPO, copy_toy, released_toy
from submissions import run_grader

import grader.commands.check as check_module
from grader.bridge.course import CourseLayout, Roots, list_assignments
from grader.commands.autograde import Outcome
from grader.commands.check import RELEASE, SOLUTION, _cell_errors, _cell_verdict, _flag_details
from grader.commands.cli import main
from grader.records.flags import review_path
from grader.records.report import CellGrade


def _grade(student: str, grade_id: str, score: float, max_score: float = 2.0,
           auto: bool = True) -> CellGrade:
    return CellGrade(student, "toy", "toy", grade_id, score, max_score,
                     score if auto else None, not auto)


def _grader(*args: str):
    """`python -m grader ARGS` as an instructor runs it (venv's bin/ not on PATH)."""
    return run_grader(*args, venv_on_path=False, timeout=900)


# ----------------------------------------------------------------------------- the report


def test_the_solution_must_score_full_marks_and_the_release_0():
    assert _cell_verdict(SOLUTION, _grade(SOLUTION, "t", 2.0)) is None
    assert _cell_verdict(SOLUTION, _grade(SOLUTION, "t", 1.5)) == "scored 1.5, must score 2"
    assert _cell_verdict(RELEASE, _grade(RELEASE, "t", 0.0)) is None
    assert _cell_verdict(RELEASE, _grade(RELEASE, "t", 2.0)) == "scored 2, must score 0"
    assert _cell_verdict(RELEASE, _grade(RELEASE, "w", 0.0, auto=False)) is None  # by hand


def test_cell_errors_are_the_first_error_of_each_graded_cell(tmp_path):
    error = nbformat.v4.new_output("error", ename="NameError", evalue="x" * 600, traceback=[])
    later = nbformat.v4.new_output("error", ename="KeyError", evalue="k", traceback=[])
    cells = [nbformat.v4.new_code_cell("t()", outputs=[error, later],
                                       metadata={"nbgrader": {"grade_id": "t1", "grade": True}}),
             nbformat.v4.new_code_cell("u()", outputs=[later])]  # not a graded cell
    path = CourseLayout(tmp_path).autograded_notebook(SOLUTION, "toy")
    path.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    assert _cell_errors(tmp_path, SOLUTION, "toy") == {"t1": ("NameError: " + "x" * 600)[:500]}
    assert _cell_errors(tmp_path, RELEASE, "toy") == {}  # nothing autograded


def test_flag_details_show_the_note_and_the_logs_last_errors(tmp_path):
    note = review_path(tmp_path, SOLUTION, "toy")
    note.parent.mkdir(parents=True)
    note.write_text("".join(f"reason {i}\n" for i in range(12)))
    log = CourseLayout(tmp_path).log(SOLUTION, "toy")
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"[x] ERROR {i}\n" for i in range(7)) + "fine\n" + "Error " + "y" * 400)
    lines = _flag_details(tmp_path, SOLUTION, "toy").split("\n    ")
    assert lines[0] == ""  # each line starts a new, indented line
    assert lines[1:] == [*(f"reason {i}" for i in range(10)),
                         *(f"[x] ERROR {i}" for i in range(3, 7)), ("Error " + "y" * 400)[:300]]
    assert _flag_details(tmp_path, RELEASE, "toy") == ""


@pytest.fixture
def faked(tmp_path, monkeypatch) -> dict:
    """check() on a copy of the toy course (exercises/ present) with autograde, the release
    check and the gradebook faked: set `outcomes`, `cells` and `release_problems`."""
    root = copy_toy(tmp_path / "course")
    (root / "exercises" / "toy").mkdir(parents=True)
    (root / "exercises" / "toy" / "toy.ipynb").write_text("{}")
    state = {"roots": Roots.from_root(root), "release_problems": [], "calls": [],
             "outcomes": [Outcome(SOLUTION, "toy"), Outcome(RELEASE, "toy")],
             "cells": {SOLUTION: [_grade(SOLUTION, "t1", 2.0), _grade(SOLUTION, "w", 0.0, 1.0,
                                                                      auto=False)],
                       RELEASE: [_grade(RELEASE, "t1", 0.0)]}}

    def autograde(submissions, workdir, roots, assignment_id, **kwargs):
        state["calls"].append((sorted(p.relative_to(submissions).as_posix()
                                      for p in submissions.rglob("*.ipynb")), kwargs))
        return state["outcomes"]

    monkeypatch.setattr(check_module, "autograde", autograde)
    monkeypatch.setattr(check_module, "check_committed_release",
                        lambda roots, aid: state["release_problems"])
    monkeypatch.setattr(check_module, "read_cell_grades",
                        lambda db_url, workdir, student, aid: state["cells"][student])
    return state


def test_check_hands_in_the_solution_and_the_release(faked):
    lines = []
    assert check_module.check(faked["roots"], ["toy"], jobs=2, timeout=9, log=lines.append)
    ((handed_in, kwargs),) = faked["calls"]
    assert handed_in == ["release/toy/toy.ipynb", "solution/toy/toy.ipynb"]
    assert {k: kwargs[k] for k in ("jobs", "timeout", "sandbox", "similarity")} == {
        "jobs": 2, "timeout": 9, "sandbox": None, "similarity": False}
    assert lines == ["  ok   solution/toy t1: 2/2", "  ok   release/toy t1: 0/2", "check passed"]


def test_check_reports_every_problem(faked):
    faked["release_problems"] = ["exercises/toy/toy.ipynb is not what `release` writes now"]
    faked["outcomes"] = [Outcome(SOLUTION, "toy", ["timeout"]), Outcome(RELEASE, "toy")]
    faked["cells"][RELEASE] = [_grade(RELEASE, "t1", 2.0), _grade(RELEASE, "t2", 0.5, 1.0)]
    lines = []
    assert not check_module.check(faked["roots"], ["toy"], log=lines.append)
    assert lines == [
        "  ok   solution/toy t1: 2/2",
        "  FAIL release/toy t1: 2/2 (scored 2, must score 0)",
        "  FAIL release/toy t2: 0.5/1 (scored 0.5, must score 0)",
        "PROBLEM toy: exercises/toy/toy.ipynb is not what `release` writes now",
        "PROBLEM solution/toy: flagged timeout",
        "PROBLEM release/toy t1: scored 2, must score 0",
        "PROBLEM release/toy t2: scored 0.5, must score 0",
        "check FAILED: 4 problem(s)"]


def test_a_missing_release_and_no_autograded_cells_are_problems(faked):
    (faked["roots"].exercises / "toy" / "toy.ipynb").unlink()
    faked["outcomes"] = [Outcome(SOLUTION, "toy")]
    faked["cells"][SOLUTION] = []
    lines = []
    assert not check_module.check(faked["roots"], ["toy"], log=lines.append)
    assert faked["calls"][0][0] == ["solution/toy/toy.ipynb"]
    assert lines == [
        f"PROBLEM toy: {faked['roots'].released_notebook('toy')} is missing",
        "PROBLEM solution/toy: no autograded cells",
        "check FAILED: 2 problem(s)"]


# ----------------------------------------------------------------------------- real runs


@pytest.mark.slow
def test_check_passes_on_the_toy(tmp_path) -> None:
    root = released_toy(tmp_path / "course")
    proc = _grader("check", "--root", str(root), "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   solution/toy test_square: 2/2" in proc.stdout
    assert "ok   release/toy test_double: 0/1" in proc.stdout
    assert "check passed" in proc.stdout


@pytest.mark.slow
def test_check_fails_on_a_wrong_solution(tmp_path) -> None:
    root = copy_toy(tmp_path / "broken")
    path = root / "solutions" / "toy" / "toy.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.nbgrader.get("grade_id") == "double":
            cell.source = cell.source.replace("return twice_the_input", "return x + 2")
    nbformat.write(nb, path)
    assert main(["release", "--root", str(root)]) == 0
    proc = _grader("check", "--root", str(root))
    assert proc.returncode == 1
    assert "FAIL solution/toy test_double: 0/1 (scored 0, must score 1)" in proc.stdout
    assert "check FAILED" in proc.stdout


REAL = list_assignments(Roots.from_root(REPO).solutions)


@pytest.mark.slow
@pytest.mark.skipif(not REAL, reason="solutions/ holds no assignment yet")
def test_check_passes_on_the_real_assignments() -> None:
    """Every solution full marks, every release 0, exercises/ up to date (all assignments)."""
    proc = _grader("check", "--root", str(REPO), "--jobs", "2")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
