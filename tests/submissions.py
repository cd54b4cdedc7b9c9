"""Build fake student submissions from the released notebooks and grade them with the grader CLI.

Shared by the end-to-end tests of the exercises (tests/grader/test_variants.py) and of the grader:

* ``solved_answers(id)``      answer-cell sources of the instructor's solution, markers removed
* ``make_submission(id, ov)``  the RELEASED notebook with every answer cell solved, then overrides
* ``write_submissions(...)``   lay notebooks out as SUBMISSIONS/<student>/<id>/<id>.ipynb
* ``autograde(...)``           run ``python -m grader autograde`` and read grades_by_cell.csv
* ``run_grader(*args)``        any ``python -m grader`` command, venv's bin on PATH or not
* ``pids_under(folder)``       processes still running inside a grading folder
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import REPO, read_csv

VENV_BIN = REPO / ".venv" / "bin"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def solution_path(assignment_id: str) -> Path:
    return REPO / "solutions" / assignment_id / f"{assignment_id}.ipynb"


def release_path(assignment_id: str) -> Path:
    return REPO / "exercises" / assignment_id / f"{assignment_id}.ipynb"


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def answer_cells(nb) -> dict[str, object]:
    """grade_id -> cell, for every answer ("solution") cell of a notebook."""
    return {_nbgrader(c)["grade_id"]: c for c in nb.cells if _nbgrader(c).get("solution")}


def strip_markers(source: str) -> str:
    """Drop the ``### BEGIN/END SOLUTION`` lines, keeping everything between them."""
    lines = source.splitlines()
    return "\n".join(line for line in lines if line.strip() not in SOLUTION_MARKERS)


def solved_answers(assignment_id: str) -> dict[str, str]:
    """grade_id -> the solution's answer-cell source without the solution markers."""
    nb = nbformat.read(solution_path(assignment_id), as_version=4)
    return {gid: strip_markers(cell.source) for gid, cell in answer_cells(nb).items()}


def make_submission(assignment_id: str, overrides: dict[str, str] | None = None):
    """The released notebook with every answer cell solved, then `overrides` applied.

    `overrides` maps a grade_id to the full source of that answer cell (a wrong or an
    alternative correct implementation). An unknown grade_id is an error, so a typo in a test
    cannot silently grade the plain solution.
    """
    nb = nbformat.read(release_path(assignment_id), as_version=4)
    solved = solved_answers(assignment_id)
    cells = answer_cells(nb)
    overrides = overrides or {}
    unknown = set(overrides) - set(cells)
    if unknown:
        raise ValueError(f"no answer cell named {sorted(unknown)} in {assignment_id}; "
                         f"answer cells are {sorted(cells)}")
    missing = set(cells) - set(solved)
    if missing:
        raise ValueError(f"answer cells {sorted(missing)} of the release are not in the solution")
    for gid, cell in cells.items():
        cell.source = overrides.get(gid, solved[gid])
    return nb


def write_submissions(root: Path, assignment_id: str, notebooks: dict[str, object]) -> Path:
    """Write ``root/<student>/<assignment_id>/<assignment_id>.ipynb`` for each student."""
    root = Path(root)
    for student_id, nb in notebooks.items():
        folder = root / student_id / assignment_id
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(copy.deepcopy(nb), folder / f"{assignment_id}.ipynb")
    return root


def grader_env(venv_on_path: bool = True) -> dict[str, str]:
    """Environment for a grader subprocess.

    With the venv's bin first on PATH (as under `make test`), or with it removed, as an instructor
    runs `.venv/bin/python -m grader` without activating the venv: then the grader itself must
    find `alembic`, which nbgrader's Gradebook runs.
    """
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    others = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    if venv_on_path:
        env["PATH"] = os.pathsep.join([str(VENV_BIN), *others])
    else:
        env["PATH"] = os.pathsep.join(others) or "/usr/bin:/bin"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_grader(*args: str, venv_on_path: bool = True,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m grader ARGS`` in the repository, output captured."""
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=REPO,
                          env=grader_env(venv_on_path), capture_output=True, text=True,
                          timeout=timeout)


def run_autograde(submissions_root: Path, workdir: Path, assignment_id: str | None = None,
                  jobs: int = 2, timeout: float = 900, extra_args: list[str] | None = None):
    """Run ``python -m grader autograde`` and return the CompletedProcess (output captured)."""
    args = ["autograde", str(submissions_root), "--workdir", str(workdir), "--jobs", str(jobs)]
    if assignment_id is not None:
        args += ["--assignment", assignment_id]
    return run_grader(*args, *(extra_args or []), timeout=timeout)


def _process_cwds() -> list[tuple[int, str]]:
    """(pid, working folder) of every live process this user can see."""
    cwds = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwds.append((int(entry), os.readlink(f"/proc/{entry}/cwd")))
            except OSError:
                continue
    return cwds


def pids_under(folder: Path) -> list[int]:
    """Live processes whose working directory is inside `folder` (a graded notebook's kernel
    and everything it started run there; other graders on the machine do not)."""
    folder = Path(folder).resolve()
    return [pid for pid, cwd in _process_cwds() if Path(cwd).is_relative_to(folder)]


def orphaned_grading_pids() -> list[int]:
    """Live processes working in the folder of a grader's nbgrader fork server (R =
    $TMPDIR/gsz-<pid>-*, see grader.bridge.nbgrader_steps) whose grader process <pid> has ended: the
    kernels (whose outer sandbox process keeps nbgrader's folder W inside R as its working
    folder) and anything they left running."""
    import re
    import tempfile

    pattern = re.compile(re.escape(tempfile.gettempdir()) + r"/gsz-(\d+)-")
    matches = [(pid, pattern.match(cwd)) for pid, cwd in _process_cwds()]
    return [pid for pid, match in matches
            if match and not os.path.exists(f"/proc/{match.group(1)}")]


def read_by_student(path: Path) -> dict[str, dict]:
    """The rows of a per-student CSV (grades.csv, review.csv) by student id."""
    return {row["student_id"]: row for row in read_csv(path)}


def read_grades_by_cell(workdir: Path, assignment_id: str | None = None):
    """(student_id, grade_id) -> (score, max_score) from DIR/grades_by_cell.csv."""
    grades = {}
    for row in read_csv(Path(workdir) / "grades_by_cell.csv"):
        if assignment_id is not None and row["assignment"] != assignment_id:
            continue
        grades[(row["student_id"], row["grade_id"])] = (
            float(row["score"] or 0), float(row["max_score"] or 0))
    return grades


def autograde(submissions_root: Path, workdir: Path, assignment_id: str, jobs: int = 2,
              timeout: float = 900) -> dict[tuple[str, str], tuple[float, float]]:
    """Grade every submission of `assignment_id`; (student, grade_id) -> (score, max_score)."""
    proc = run_autograde(submissions_root, workdir, assignment_id, jobs=jobs, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"grader autograde exited {proc.returncode}\n"
                           f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return read_grades_by_cell(workdir, assignment_id)


def autograded_cells(assignment_id: str) -> dict[str, float]:
    """grade_id -> points of every autograded test cell in the solution."""
    nb = nbformat.read(solution_path(assignment_id), as_version=4)
    return {_nbgrader(c)["grade_id"]: float(_nbgrader(c).get("points", 0))
            for c in nb.cells
            if _nbgrader(c).get("grade") and not _nbgrader(c).get("solution")}


def load_answers(assignment_id: str, overrides: dict[str, str] | None = None) -> dict:
    """Execute the solution's setup and answer cells (with overrides) in a fresh namespace.

    Runs, in notebook order, every locked non-graded code cell (imports, data) and every answer
    cell; test cells and free experiment cells are skipped. Lets unit tests call the checks in
    grader.checks on solved or deliberately wrong answers without starting a kernel.
    """
    nb = nbformat.read(solution_path(assignment_id), as_version=4)
    solved = solved_answers(assignment_id)
    overrides = overrides or {}
    unknown = set(overrides) - set(solved)
    if unknown:
        raise ValueError(f"no answer cell named {sorted(unknown)} in {assignment_id}")
    namespace: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if cell.cell_type != "code" or not meta:
            continue
        if meta.get("solution"):
            gid = meta["grade_id"]
            source = overrides.get(gid, solved[gid])
        elif meta.get("locked") and not meta.get("grade"):
            source = cell.source
        else:
            continue
        exec(compile(source, f"<{assignment_id}:{meta['grade_id']}>", "exec"), namespace)
    return namespace


def visible_tests(assignment_id: str) -> dict[str, str]:
    """grade_id -> the visible part of each autograded test cell (before the hidden tests)."""
    nb = nbformat.read(solution_path(assignment_id), as_version=4)
    return {_nbgrader(c)["grade_id"]: c.source.split("### BEGIN HIDDEN TESTS")[0]
            for c in nb.cells
            if c.cell_type == "code" and _nbgrader(c).get("grade")
            and not _nbgrader(c).get("solution")}
