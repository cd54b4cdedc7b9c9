"""Per-submission flags: the one place that decides what went wrong with a submission.

A flag is a short name written to the `flags` column of grades.csv (`;`-separated). Staging
flags (missing / invalid notebook) are found before grading; the rest come from the checks in
`FLAG_CHECKS`, which run after nbgrader's autograde, in the process that graded the submission.
Add a check (e.g. tamper detection) by appending a function `(SubmissionContext) -> flags`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MISSING_NOTEBOOK = "missing-notebook"  # SUBMISSIONS/<student>/<id>/<id>.ipynb absent
INVALID_NOTEBOOK = "invalid-notebook"  # empty, not JSON, or not an nbformat-4 notebook
TIMEOUT = "timeout"                    # a cell ran longer than Execute.timeout
KERNEL_DIED = "kernel-died"            # the kernel exited while running the notebook
GRADING_ERROR = "grading-error"        # nbgrader failed for another reason (see the log)
OUTPUT_TRUNCATED = "output-truncated"  # the notebook printed more than the output caps
TAMPER_SUSPECTED = "tamper-suspected"  # see DIR/review/<student>/<id>.txt (a review aid only)
UNSAFE_FILE = "unsafe-file"            # the hand-in held links or special files (not copied)
BAD_NAME = "bad-name"                  # the student folder's name is refused (not graded)
DISK_LIMIT = "disk-limit"              # the notebook filled its scratch folder, /tmp or /dev/shm
VERDICT_MISMATCH = "verdict-mismatch"  # the kernel's test results differ from the trusted verdict
UNDEFINED_NAMES = "undefined-names"    # a trusted verdict failed on a name the answer cells lack

# nbgrader's Execute appends an error output with this name to a cell that timed out.
TIMEOUT_ENAME = "CellTimeoutError"
KERNEL_DIED_TEXT = ("DeadKernelError", "Kernel died", "kernel became unresponsive")


@dataclass(frozen=True)
class SubmissionContext:
    """What a check may look at; paths are inside the nbgrader course directory."""

    course_root: Path
    student_id: str
    assignment_id: str
    autograde_succeeded: bool
    log: str  # nbgrader's log and traceback for this submission

    @property
    def source_notebook(self) -> Path:
        return self.course_root / "source" / self.assignment_id / f"{self.assignment_id}.ipynb"

    @property
    def submitted_notebook(self) -> Path:
        return (self.course_root / "submitted" / self.student_id / self.assignment_id
                / f"{self.assignment_id}.ipynb")

    @property
    def autograded_notebook(self) -> Path:
        return (self.course_root / "autograded" / self.student_id / self.assignment_id
                / f"{self.assignment_id}.ipynb")


def execution_flags(ctx: SubmissionContext) -> list[str]:
    """timeout / kernel-died / grading-error, from the autograded notebook and nbgrader's log."""
    if not ctx.autograde_succeeded:
        died = any(text in ctx.log for text in KERNEL_DIED_TEXT)
        return [KERNEL_DIED if died else GRADING_ERROR]
    nb = json.loads(ctx.autograded_notebook.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == TIMEOUT_ENAME:
                return [TIMEOUT]
    return []


def _sandbox_and_tamper_flags(ctx: SubmissionContext) -> list[str]:
    # timeout / kernel-died / output-truncated from the sandbox's run report; tamper-suspected
    # from the static scan and the kernel's integrity report (imported late: no import cycle)
    from grader.sandbox import sandbox_flags
    from grader.tamper import tamper_flags

    return sandbox_flags(ctx) + tamper_flags(ctx)


FlagCheck = Callable[[SubmissionContext], Iterable[str]]
FLAG_CHECKS: list[FlagCheck] = [execution_flags, _sandbox_and_tamper_flags]


def collect_flags(ctx: SubmissionContext, checks: Iterable[FlagCheck] | None = None) -> list[str]:
    """Run every check; the flags, de-duplicated and sorted (so the CSV is deterministic)."""
    found = set()
    for check in FLAG_CHECKS if checks is None else checks:
        found.update(check(ctx))
    return sorted(found)


def format_flags(flags: Iterable[str]) -> str:
    return ";".join(sorted(set(flags)))
