"""End-to-end grading of an assignment's answer variants in ONE `python -m grader autograde` run.

One submission per variant (the student id says which), plus the solution and the untouched
release, so that the slow part — starting kernels — is paid once per submission and the gradebook
is built once. A wrong answer must lose points on the test cell of its own name; it may also cost
the cells of answers BUILT ON it (a wrong ResidualBlock breaks residual_mlp, a wrong shortcut
breaks BasicBlock); every other cell must keep full marks. Correct variants and the solution get
full marks everywhere, the release 0.

The same variants are also checked in-process, faster and with their messages, by
tests/test_checks_ex*.py.
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


def student_id(kind: str, *parts: str) -> str:
    return "-".join((kind, *parts)).replace("_", "-")


def whole_notebook_zeroed(variant: str) -> bool:
    """Using the course library is flagged (tamper-suspected, a review aid): the cell of that
    answer loses its points; the other cells may keep theirs."""
    return variant.startswith("imports_") or "library" in variant


def build_submissions(assignment_id: str, wrong: dict, correct: dict) -> dict[str, object]:
    """student id -> notebook: `solution`, `release`, `wrong-<name>-<variant>`, `correct-<v>`."""
    notebooks = {"solution": make_submission(assignment_id),
                 "release": released_notebook(assignment_id)}
    for name, variants in wrong.items():
        for variant, source in variants.items():
            notebooks[student_id("wrong", name, variant)] = make_submission(
                assignment_id, {name: source})
    for variant, overrides in correct.items():
        notebooks[student_id("correct", variant)] = make_submission(assignment_id, overrides)
    return notebooks


def grade_variants(tmp_path: Path, assignment_id: str, wrong: dict, correct: dict, jobs: int = 2):
    """Autograde every variant in ONE run; (grades, points per test cell, s per submission)."""
    notebooks = build_submissions(assignment_id, wrong, correct)
    root = write_submissions(tmp_path / "submissions", assignment_id, notebooks)
    start = time.perf_counter()
    grades = autograde(root, tmp_path / "work", assignment_id, jobs=jobs)
    per_submission = (time.perf_counter() - start) * jobs / len(notebooks)
    return grades, autograded_cells(assignment_id), per_submission


def problems(grades: dict, cells: dict[str, float], wrong: dict, correct: dict,
             dependents: dict[str, set[str]] | None = None) -> list[str]:
    """Every way the grades differ from what the variants should get (empty when all is well)."""
    dependents = dependents or {}
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
            student = student_id("wrong", name, variant)
            may_lose = dependents.get(name, set())
            for cell, points in cells.items():
                got = score(student, cell)
                if cell == f"test_{name}":
                    if not got < points:
                        found.append(f"{student}: {cell} {got} / {points}, expected fewer points")
                elif got != points and cell not in may_lose and not whole_notebook_zeroed(variant):
                    found.append(f"{student}: {cell} {got} / {points}, expected full marks")
    for variant in correct:
        student = student_id("correct", variant)
        for cell, points in cells.items():
            if score(student, cell) != points:
                found.append(f"{student}: {cell} {score(student, cell)} / {points}")
    return found


def run(tmp_path: Path, assignment_id: str, wrong: dict, correct: dict,
        dependents: dict[str, set[str]] | None = None) -> list[str]:
    """Grade the variants and return the problems; prints the time per submission."""
    grades, cells, seconds = grade_variants(tmp_path, assignment_id, wrong, correct)
    count = sum(len(v) for v in wrong.values())
    print(f"{assignment_id}: {count} wrong + {len(correct)} correct variants, "
          f"{seconds:.1f} s of autograde per submission")
    expected_cells = {f"test_{name}" for name in wrong}
    if set(cells) != expected_cells:
        return [f"test cells {sorted(cells)}, expected {sorted(expected_cells)}"]
    return problems(grades, cells, wrong, correct, dependents)
