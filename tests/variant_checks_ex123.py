"""Grade the answer variants of ex1-ex3 end to end and list every unexpected grade.

Like tests/variant_grading.py (ex4/ex5), but a wrong answer may also cost the points of the test
cells of answers BUILT ON it (a wrong ResidualBlock breaks residual_mlp, a wrong shortcut breaks
BasicBlock); all other cells must still get full marks.

Every wrong variant is checked in-process by tests/test_checks_ex*.py; to keep this end-to-end run
short it grades the first PER_NAME wrong variants of each answer (the variants files list the
most instructive first) and every correct variant.
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

# grade_id -> test cells of other answers that use it
DEPENDENTS = {
    "ResidualBlock": {"test_residual_mlp", "test_zero_init_residual_"},
    "ZeroPadShortcut": {"test_BasicBlock"},
    "ProjectionShortcut": {"test_BasicBlock"},
}


PER_NAME = {"BasicBlock": 5}  # answers with more distinct ways to go wrong
DEFAULT_PER_NAME = 3


def end_to_end_selection(wrong: dict) -> dict:
    """The first few wrong variants of each answer."""
    return {name: dict(list(variants.items())[:PER_NAME.get(name, DEFAULT_PER_NAME)])
            for name, variants in wrong.items()}


def student_id(kind: str, *parts: str) -> str:
    return "-".join((kind, *parts)).replace("_", "-")


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


def problems(grades: dict, cells: dict[str, float], wrong: dict, correct: dict) -> list[str]:
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
            for cell, points in cells.items():
                got = score(student, cell)
                if cell == f"test_{name}":
                    if not got < points:
                        found.append(f"{student}: {cell} {got} / {points}, expected fewer points")
                elif cell not in DEPENDENTS.get(name, set()) and got != points:
                    found.append(f"{student}: {cell} {got} / {points}, expected full marks")
    for variant in correct:
        student = student_id("correct", variant)
        for cell, points in cells.items():
            if score(student, cell) != points:
                found.append(f"{student}: {cell} {score(student, cell)} / {points}")
    return found


def run(tmp_path: Path, assignment_id: str, wrong: dict, correct: dict) -> list[str]:
    wrong = end_to_end_selection(wrong)
    grades, cells, seconds = grade_variants(tmp_path, assignment_id, wrong, correct)
    count = sum(len(v) for v in wrong.values())
    print(f"{assignment_id}: {count} wrong + {len(correct)} correct variants, "
          f"{seconds:.1f} s of autograde per submission")
    expected_cells = {f"test_{name}" for name in wrong}
    if set(cells) != expected_cells:
        return [f"test cells {sorted(cells)}, expected {sorted(expected_cells)}"]
    return problems(grades, cells, wrong, correct)
