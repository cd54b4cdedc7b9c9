"""End-to-end grading of an assignment's answer variants in ONE `python -m grader autograde` run.

Shared by tests/test_variants_ex4.py and tests/test_variants_ex5.py. One submission per variant
(student id says which), plus the solution and the untouched release, so that the slow part —
starting kernels — is paid once per submission and the gradebook is built once.
"""

from __future__ import annotations

import time
from pathlib import Path

from submissions import (
    autograde,
    autograded_cells,
    make_submission,
    released_notebook,
    write_submissions,
)


def build_submissions(assignment_id: str, wrong: dict, correct: dict) -> dict[str, object]:
    """student id -> notebook: `solution`, `release`, `wrong-<name>-<variant>`, `correct-<v>`."""
    notebooks = {"solution": make_submission(assignment_id),
                 "release": released_notebook(assignment_id)}
    for name, variants in wrong.items():
        for variant, source in variants.items():
            student = f"wrong-{name}-{variant}".replace("_", "-")
            notebooks[student] = make_submission(assignment_id, {name: source})
    for variant, overrides in correct.items():
        notebooks[f"correct-{variant}".replace("_", "-")] = make_submission(assignment_id,
                                                                            overrides)
    return notebooks


def grade_variants(tmp_path: Path, assignment_id: str, wrong: dict, correct: dict, jobs: int = 2):
    """Autograde every variant; return (grades, points per test cell, seconds per submission)."""
    notebooks = build_submissions(assignment_id, wrong, correct)
    root = write_submissions(tmp_path / "submissions", assignment_id, notebooks)
    start = time.perf_counter()
    grades = autograde(root, tmp_path / "work", assignment_id, jobs=jobs)
    per_submission = (time.perf_counter() - start) * jobs / len(notebooks)
    return grades, autograded_cells(assignment_id), per_submission


def problems(grades: dict, cells: dict[str, float], wrong: dict, correct: dict) -> list[str]:
    """Every way the grades differ from what the variants should get (empty when all is well)."""
    found = []

    def score(student: str, cell: str) -> float:
        return grades.get((student, cell), (float("nan"), 0.0))[0]

    for cell, points in cells.items():
        if score("solution", cell) != points:
            found.append(f"solution: {cell} {score('solution', cell)} / {points}")
        if score("release", cell) != 0:
            found.append(f"release: {cell} {score('release', cell)}, expected 0")
    for name, variants in wrong.items():
        for variant in variants:
            student = f"wrong-{name}-{variant}".replace("_", "-")
            # Importing the course library is flagged as tampering: the grader zeroes the whole
            # notebook, not only the cell that tests the imported name.
            whole_notebook = variant.startswith("imports_")
            for cell, points in cells.items():
                got = score(student, cell)
                if cell == f"test_{name}" and not got < points:
                    found.append(f"{student}: {cell} {got} / {points}, expected fewer points")
                elif cell != f"test_{name}" and got != points and not whole_notebook:
                    found.append(f"{student}: {cell} {got} / {points}, expected full marks")
    for variant in correct:
        student = f"correct-{variant}".replace("_", "-")
        for cell, points in cells.items():
            if score(student, cell) != points:
                found.append(f"{student}: {cell} {score(student, cell)} / {points}")
    return found
