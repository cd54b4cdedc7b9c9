"""The instructor's hand-grading workflow on the toy assignment (tests/fixtures/toy).

autograde -> the written answer `explain` (1 point) awaits a hand grade -> a score and comment
are given the way formgrader does (nbgrader's Gradebook API) -> `export` puts them into the CSVs
and the feedback -> grading again (same hand-in, other limits) keeps them final -> a changed
answer keeps the old score but asks for a new look. Runtime: about 1 min on 2 cores (three
autograde runs of one submission), so marked slow.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import copy_toy, no_sandbox_args, read_csv
from nbgrader.api import Gradebook
from submissions import run_grader

from grader.bridge.course import put_venv_on_path
from grader.commands.cli import main

pytestmark = pytest.mark.slow

COMMENT = "Right: 2x = x + x. Say why it holds for every x."
ANSWER = "Because 2 * x is x added to itself."


def _grader(*args: str) -> subprocess.CompletedProcess:
    """`python -m grader ARGS` as an instructor runs it (venv's bin/ not on PATH)."""
    proc = run_grader(*args, venv_on_path=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _hand_in(root: Path, submissions: Path, answer: str) -> None:
    """alice's toy notebook: the solution's code, `answer` as the written answer."""
    solved = nbformat.read(root / "solutions" / "toy" / "toy.ipynb", as_version=4)
    code = {c.metadata.nbgrader["grade_id"]: "\n".join(
        line for line in c.source.splitlines() if "### " not in line) for c in solved.cells}
    nb = nbformat.read(root / "exercises" / "toy" / "toy.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.nbgrader.get("solution"):
            grade_id = cell.metadata.nbgrader["grade_id"]
            cell.source = answer if grade_id == "explain" else code[grade_id]
    folder = submissions / "alice" / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "toy.ipynb")


def _autograde(root: Path, submissions: Path, workdir: Path, cell_timeout: str) -> str:
    extra = no_sandbox_args()  # our own code: safe
    return _grader("autograde", str(submissions), "--workdir", str(workdir), "--root",
                   str(root), "--cell-timeout", cell_timeout, *extra).stdout


def _grades(workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """alice's row of grades.csv, and grade_id -> score from grades_by_cell.csv."""
    (row,) = read_csv(workdir / "grades.csv")
    cells = {r["grade_id"]: r["score"] for r in read_csv(workdir / "grades_by_cell.csv")}
    return row, cells


def _grade_by_hand(workdir: Path, score: float, comment: str) -> None:
    """What formgrader's "save" does: set manual_score (and the comment), mark it graded."""
    put_venv_on_path()  # Gradebook runs `alembic`
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}") as gb:
        grade = gb.find_grade("explain", "toy", "toy", "alice")
        assert grade.auto_score is None and grade.needs_manual_grade
        grade.manual_score = score
        grade.needs_manual_grade = False  # formgrader: a manual score was given
        gb.find_comment("explain", "toy", "toy", "alice").manual_comment = comment
        gb.db.commit()


def _feedback(workdir: Path) -> str:
    return (workdir / "feedback" / "alice" / "toy" / "toy.html").read_text(encoding="utf-8")


def test_hand_grades_reach_the_csvs_and_feedback_and_survive_regrading(tmp_path: Path) -> None:
    root, submissions, workdir = tmp_path / "course", tmp_path / "subs", tmp_path / "work"
    copy_toy(root)
    assert main(["release", "--root", str(root)]) == 0
    _hand_in(root, submissions, ANSWER)

    # 1. autograde: 3 of 4 points from the tests; the written answer awaits the instructor
    _autograde(root, submissions, workdir, "6")
    row, cells = _grades(workdir)
    assert (row["score"], row["max_score"], row["needs_manual_grade"]) == ("3", "4", "true")
    assert cells["explain"] == "0"
    assert COMMENT not in _feedback(workdir)

    # 2. hand grade in the gradebook, then export: CSVs and feedback show it, nothing regraded
    _grade_by_hand(workdir, 1.0, COMMENT)
    graded_at = (workdir / "autograded" / "alice" / "toy" / "toy.ipynb").stat().st_mtime_ns
    proc = _grader("export", "--workdir", str(workdir))
    assert "feedback alice/toy" in proc.stdout
    row, cells = _grades(workdir)
    assert (row["score"], row["needs_manual_grade"], cells["explain"]) == ("4", "false", "1")
    page = _feedback(workdir)
    assert COMMENT in page and "Score: 4.0 / 4.0" in page
    assert (workdir / "autograded" / "alice" / "toy" / "toy.ipynb").stat().st_mtime_ns == \
        graded_at  # export ran no notebook

    # 3. autograde again, unchanged: resumed, the hand grade stays
    after_export = {n: (workdir / n).read_bytes() for n in ("grades.csv", "grades_by_cell.csv")}
    assert "(from an earlier run)" in _autograde(root, submissions, workdir, "6")
    for name, data in after_export.items():
        assert (workdir / name).read_bytes() == data

    # 4. other limits: nbgrader really regrades (and re-marks the answer "needs manual
    #    grade"); the answer is unchanged, so the hand grade stays final, feedback included
    assert "(from an earlier run)" not in _autograde(root, submissions, workdir, "7")
    assert (workdir / "autograded" / "alice" / "toy" / "toy.ipynb").stat().st_mtime_ns != \
        graded_at
    for name, data in after_export.items():
        assert (workdir / name).read_bytes() == data
    assert COMMENT in _feedback(workdir)

    # 5. a changed written answer: the old score is kept as a start, but must be looked at
    _hand_in(root, submissions, ANSWER + " Also x + x = 2x by distributivity.")
    _autograde(root, submissions, workdir, "7")
    row, cells = _grades(workdir)
    assert (row["score"], row["needs_manual_grade"], cells["explain"]) == ("4", "true", "1")
