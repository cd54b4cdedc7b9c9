"""`python -m grader check`: the assignments grade the way they must.

For each assignment:
* exercises/<id>/ is exactly what `release` produces now, and leaks nothing;
* the solution, handed in as a submission, gets full marks on every autograded cell;
* the released student notebook, handed in untouched, gets 0 on every autograded cell.
Both are graded by the same code path as `autograde`, in a temporary course directory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from grader.bridge import cell_roles
from grader.bridge.course import CourseLayout, Roots, sqlite_url
from grader.bridge.nbgrader_config import DEFAULT_TIMEOUT
from grader.commands.autograde import GradingSettings, autograde
from grader.commands.release import check_committed_release
from grader.isolation.limits import Limits
from grader.records.flags import review_path
from grader.records.report import CellGrade, number, read_cell_grades

SOLUTION, RELEASE = "solution", "release"  # the two pseudo-students


def _hand_in(roots: Roots, assignment_ids: list[str], submissions: Path) -> list[str]:
    """Copy solutions and releases in as submissions; problems for releases that are absent."""
    problems = []
    for aid in assignment_ids:
        shutil.copytree(roots.solutions / aid, submissions / SOLUTION / aid)
        if roots.released_notebook(aid).is_file():
            shutil.copytree(roots.exercises / aid, submissions / RELEASE / aid)
        else:
            problems.append(f"{aid}: {roots.released_notebook(aid)} is missing")
    return problems


def _cell_verdict(student_id: str, cell: CellGrade) -> str | None:
    """None when the cell scored what it must, else a description of the mismatch."""
    if cell.auto_score is None:
        return None  # graded by hand
    want = cell.max_score if student_id == SOLUTION else 0.0
    if abs(cell.score - want) > 1e-9:
        return f"scored {number(cell.score)}, must score {number(want)}"
    return None


def _cell_errors(workdir: Path, student_id: str, assignment_id: str) -> dict[str, str]:
    """grade_id -> "ename: evalue" of the first error in that cell of the autograded notebook."""
    path = CourseLayout(workdir).autograded_notebook(student_id, assignment_id)
    if not path.is_file():
        return {}
    errors = {}
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        grade_id = cell_roles.grade_id(cell)
        for output in cell.get("outputs", []):
            if grade_id and output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}".strip()
                errors.setdefault(grade_id, text[:500])
    return errors


def _flag_details(workdir: Path, student_id: str, assignment_id: str) -> str:
    """The review note (tamper reasons) and the log's last error lines, indented."""
    lines = []
    review = review_path(workdir, student_id, assignment_id)
    if review.is_file():
        lines += review.read_text(encoding="utf-8").splitlines()[:10]
    log = CourseLayout(workdir).log(student_id, assignment_id)
    if log.is_file():
        lines += [line for line in log.read_text(encoding="utf-8").splitlines()
                  if "ERROR" in line or "Error" in line][-5:]
    return "".join(f"\n    {line[:300]}" for line in lines)


def check(roots: Roots, assignment_ids: list[str], jobs: int = 1,
          timeout: int = DEFAULT_TIMEOUT, log: Callable[[str], None] = print,
          sandbox: bool | None = None, limits: Limits | None = None) -> bool:
    """True when every check passes; prints one line per autograded cell.
    sandbox=None: sandboxed where the sandbox is available (these are the instructor's files);
    limits: the run's limits, as autograde takes them (None: its defaults)."""
    problems = []
    for aid in assignment_ids:
        problems += [f"{aid}: {p}" for p in check_committed_release(roots, aid)]
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
        submissions, workdir = Path(tmp) / "submissions", Path(tmp) / "work"
        problems += _hand_in(roots, assignment_ids, submissions)
        outcomes = autograde(submissions, workdir, roots, None, jobs=jobs, timeout=timeout,
                             log=log, sandbox=sandbox, limits=limits,
                             similarity=False)  # it IS the solution
        settings = GradingSettings(workdir, sqlite_url(workdir), timeout)
        for outcome in outcomes:
            who = f"{outcome.student_id}/{outcome.assignment_id}"
            if outcome.flags:
                # the work folder is temporary: show why here, not where the files were
                problems.append(f"{who}: flagged {';'.join(outcome.flags)}"
                                + _flag_details(workdir, outcome.student_id,
                                                outcome.assignment_id))
            cells = read_cell_grades(settings.db_url, workdir, outcome.student_id,
                                     outcome.assignment_id)
            autograded = [c for c in cells if c.auto_score is not None]
            errors = _cell_errors(workdir, outcome.student_id, outcome.assignment_id)
            if not autograded:
                problems.append(f"{who}: no autograded cells")
            for cell in autograded:
                verdict = _cell_verdict(outcome.student_id, cell)
                status = "FAIL" if verdict else "ok"
                log(f"  {status:4} {who} {cell.grade_id}: {number(cell.score)}/"
                    f"{number(cell.max_score)}" + (f" ({verdict})" if verdict else ""))
                if verdict and cell.grade_id in errors:
                    log(f"       {errors[cell.grade_id]}")
                if verdict:
                    problems.append(f"{who} {cell.grade_id}: {verdict}")
    for problem in problems:
        log(f"PROBLEM {problem}")
    log("check passed" if not problems else f"check FAILED: {len(problems)} problem(s)")
    return not problems
