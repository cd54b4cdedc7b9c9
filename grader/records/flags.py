"""Per-submission flags: the one place that decides what went wrong with a submission.

A flag is a short name written to the `flags` column of grades.csv and review.csv
(`;`-separated, sorted). Every flag name is a constant here, and every decision is a function
here; the modules that find the facts (staging, grader.isolation.sandbox's run report,
grader.integrity.tamper_scan, grader.judging.verdict, grader.integrity.similarity) import them.

* Staging flags (missing / invalid notebook, unsafe file, bad name) are found before grading.
* After nbgrader's autograde, `collect_flags` runs the checks in `FLAG_CHECKS` on one
  `SubmissionContext`, which reads the autograded notebook (and its run report, written by
  grader.isolation.sandbox.SandboxedExecute into the notebook's metadata) once for all of them.
* Why a submission was flagged (tamper reasons, verdict differences) is gathered as the checks
  run and written once, by `write_review`, to DIR/review/<student>/<assignment>.txt
  (`review_path`), which review.csv points at.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from grader.bridge.course import CourseLayout
from grader.files import make_folders, write_atomic
from grader.isolation.limits import RUN_METADATA_KEY

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
SIMILAR_TO_REFERENCE = "similar-to-reference"  # an answer cell close to the solution or library
SIMILAR_TO_STUDENT = "similar-to-student"      # an answer cell close to another student's

# Staging flags after which nothing of the hand-in can be run (graded 0, placeholder feedback);
# an unsafe-file flag alone leaves the rest of the hand-in to grade.
NOT_GRADABLE = frozenset({MISSING_NOTEBOOK, INVALID_NOTEBOOK})

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
    # the review note's lines the checks found (tamper reasons); written once, by write_review
    notes: list[str] = field(default_factory=list)

    @property
    def source_notebook(self) -> Path:
        return CourseLayout(self.course_root).source_notebook(self.assignment_id)

    @property
    def released_notebook(self) -> Path:
        return CourseLayout(self.course_root).released_notebook(self.assignment_id)

    @property
    def submitted_notebook(self) -> Path:
        return CourseLayout(self.course_root).submitted_notebook(self.student_id,
                                                                 self.assignment_id)

    @property
    def autograded_notebook(self) -> Path:
        return CourseLayout(self.course_root).autograded_notebook(self.student_id,
                                                                  self.assignment_id)

    @functools.cached_property
    def autograded(self) -> dict | None:
        """The autograded notebook as JSON, read once; None when absent or unreadable."""
        try:
            nb = json.loads(self.autograded_notebook.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return nb if isinstance(nb, dict) else None

    @property
    def run_report(self) -> dict:
        """What the sandboxed executor recorded ({} when the notebook did not run)."""
        return run_report(self.autograded or {})


def run_report(nb) -> dict:
    """The run report of an executed notebook (a NotebookNode or its JSON); {} when none."""
    report = (nb.get("metadata") or {}).get(RUN_METADATA_KEY) or {}
    return dict(report) if isinstance(report, dict) else {}


def run_flags(report: dict) -> list[str]:
    """Flags from a run report: timeout (a cell, or the notebook's watchdog), kernel-died (not
    when a limit stopped it), output-truncated, disk-limit, tamper-suspected (the kernel's
    integrity report named a reason)."""
    flags = []
    if report.get("watchdog") or report.get("cell_timeouts"):
        flags.append(TIMEOUT)
    if report.get("kernel_died") and not (report.get("watchdog")
                                          or report.get("kernel_stopped")):
        flags.append(KERNEL_DIED)
    if report.get("output_truncated"):
        flags.append(OUTPUT_TRUNCATED)
    if report.get("disk_full"):
        flags.append(DISK_LIMIT)
    if report.get("tamper_runtime"):
        flags.append(TAMPER_SUSPECTED)
    return flags


def execution_flags(ctx: SubmissionContext) -> list[str]:
    """timeout / kernel-died / grading-error from nbgrader's result and log, the autograded
    notebook's error outputs and the sandbox's run report (its tamper reasons: tamper_flags)."""
    if not ctx.autograde_succeeded:
        died = any(text in ctx.log for text in KERNEL_DIED_TEXT)
        return [KERNEL_DIED if died else GRADING_ERROR]
    nb = ctx.autograded
    if nb is None:
        return [GRADING_ERROR]  # nbgrader reported success but left no readable notebook
    flags = [f for f in run_flags(run_report(nb)) if f != TAMPER_SUSPECTED]
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == TIMEOUT_ENAME:
                flags.append(TIMEOUT)
    return flags


def review_path(course_root: Path, student_id: str, assignment_id: str) -> Path:
    """DIR/review/<student>/<assignment>.txt: why this submission was flagged."""
    return CourseLayout(Path(course_root)).review_note(student_id, assignment_id)


def write_review(course_root: Path, student_id: str, assignment_id: str,
                 notes: Iterable[str]) -> None:
    """The review note, written once per grading with every line the checks found (an earlier
    grading's note is replaced, and removed when there is nothing to say); folders and the file
    are made and replaced without following a link (grader.files)."""
    text = "".join(notes)
    path = review_path(course_root, student_id, assignment_id)
    if not text:
        path.unlink(missing_ok=True)
        return
    make_folders(Path(course_root), CourseLayout.REVIEW, student_id)
    write_atomic(path, text.encode("utf-8"))


def tamper_flags(ctx: SubmissionContext) -> list[str]:
    """tamper-suspected when the static scan of the hand-in (cells that differ from the release)
    or the kernel's runtime report names a reason; the reasons go to `ctx.notes` (the review
    note's lines). A review aid: no score depends on it."""
    import nbformat

    from grader.integrity.tamper_scan import submission_reasons

    try:
        submitted = nbformat.read(ctx.submitted_notebook, as_version=4)
        released = nbformat.read(ctx.released_notebook, as_version=4)
    except Exception:  # noqa: BLE001 - unreadable notebooks are flagged by other checks
        return []
    reasons = submission_reasons(submitted, released, ctx.run_report)
    ctx.notes.extend(f"{reason}\n" for reason in reasons)
    return [TAMPER_SUSPECTED] if reasons else []


def verdict_flags(differences: list[str], notes: list[str]) -> list[str]:
    """verdict-mismatch when the kernel's scores differed from the trusted verdicts; each
    difference is added to `notes` (the review note's lines, after any tamper reasons)."""
    notes.extend(f"verdict: {d}\n" for d in differences)
    return [VERDICT_MISMATCH] if differences else []


FlagCheck = Callable[[SubmissionContext], Iterable[str]]
FLAG_CHECKS: list[FlagCheck] = [execution_flags, tamper_flags]


def collect_flags(ctx: SubmissionContext, checks: Iterable[FlagCheck] | None = None) -> list[str]:
    """Run every check; the flags, de-duplicated and sorted (so the CSV is deterministic)."""
    found = set()
    for check in FLAG_CHECKS if checks is None else checks:
        found.update(check(ctx))
    return sorted(found)


def format_flags(flags: Iterable[str]) -> str:
    """The text of a `flags` column: sorted, de-duplicated, `;`-separated ('' for none)."""
    return ";".join(sorted(set(flags)))
