"""End-to-end grading of an assignment's answer variants in ONE `python -m grader autograde` run.

One submission per variant (the student id says which), so that the slow part — starting kernels —
is paid once per submission and the gradebook is built once. The solution and the untouched
release are graded end to end by `grader check` (tests/grader/commands/test_check.py
::test_check_passes_on_the_real_assignments: every solution full marks, every release 0), not
a second time here. Which wrong variants go end to end is `end_to_end_selection`'s choice; every
one of them is judged in-process by tests/grader/checks/test_exN.py (tests/variant_checks.py).

A wrong answer must lose points on the test cell of its own name; it may also cost the cells of
answers BUILT ON it (a wrong ResidualBlock breaks residual_mlp, a wrong shortcut breaks
BasicBlock); every other cell must keep full marks. Correct variants and the solution get full
marks everywhere, the release 0.
"""

from __future__ import annotations

import time
from pathlib import Path

from submissions import (
    autograde,
    autograded_cells,
    make_submission,
    write_submissions,
)


def student_id(kind: str, *parts: str) -> str:
    return "-".join((kind, *parts)).replace("_", "-")


def whole_notebook_zeroed(variant: str) -> bool:
    """Using the course library is flagged (tamper-suspected, a review aid): the cell of that
    answer loses its points; the other cells may keep theirs."""
    return variant.startswith("imports_") or "library" in variant


# Wrong variants graded end to end beyond the first of each answer: the ones whose mistake takes
# a path that only a real run has (the sandbox and the tamper scan: answers using the course
# library), or that the proxies of the trusted verdict must carry across (in-place changes of an
# input or a parameter, a layer shared twice, new parameter objects, hooks left on the model).
CROSSES_THE_WIRE = frozenset({"modifies_input", "returns_copy", "new_parameters", "shared_block",
                              "leaves_hooks"})


def end_to_end_selection(wrong: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The wrong variants an end-to-end run grades: per answer, its first variant (one wrong
    answer per test cell), every variant that uses the course library and every one in
    CROSSES_THE_WIRE."""
    chosen = {}
    for name, variants in wrong.items():
        first = next(iter(variants))
        chosen[name] = {v: src for v, src in variants.items()
                        if v == first or "library" in v or v in CROSSES_THE_WIRE}
    return chosen


def build_submissions(assignment_id: str, wrong: dict, correct: dict) -> dict[str, object]:
    """student id -> notebook: `wrong-<name>-<variant>`, `correct-<v>`."""
    notebooks = {}
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


def submissions_to_judge(wrong: dict, correct: dict) -> dict[str, tuple[str, str | None, str]]:
    """student id -> (kind, answer name or None, variant) for every submission `build_submissions`
    makes; kind is `wrong` or `correct` (judge() also knows `solution` and `release`)."""
    judged = {}
    for name, variants in wrong.items():
        for variant in variants:
            judged[student_id("wrong", name, variant)] = ("wrong", name, variant)
    for variant in correct:
        judged[student_id("correct", variant)] = ("correct", None, variant)
    return judged


def judge(grades: dict, cells: dict[str, float], student: str, kind: str, name: str | None,
          variant: str, dependents: dict[str, set[str]] | None = None) -> list[str]:
    """Every way one submission's grades differ from what it should get (empty when all is well).

    The release gets 0 everywhere; a wrong answer fewer points on its own cell and full marks on
    the others, except the cells built on it (`dependents`) and a notebook zeroed as a whole;
    the solution and every correct variant full marks everywhere."""
    may_lose = (dependents or {}).get(name, set())
    found = []
    for cell, points in cells.items():
        got = grades.get((student, cell), (float("nan"), 0.0))[0]
        if kind == "release":
            if got != 0:
                found.append(f"{student}: {cell} {got}, expected 0")
        elif kind == "wrong" and cell == f"test_{name}":
            if not got < points:
                found.append(f"{student}: {cell} {got} / {points}, expected fewer points")
        elif kind == "wrong" and (cell in may_lose or whole_notebook_zeroed(variant)):
            continue
        elif got != points:
            found.append(f"{student}: {cell} {got} / {points}, expected full marks")
    return found
