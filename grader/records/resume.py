"""Resume an autograde run: a submission graded once is not graded again, unless asked.

After grade_one finishes a submission (gradebook rows, autograded notebook and feedback all
written), it records DIR/.grader/state/<student>/<assignment>.json with a fingerprint of
everything the result depends on: the submitted files, the assignment's source, the grading
settings, and the grader's code (the hidden checks in grader/checks/, the rest of the grader
package and the course library the checks compute references with). A later run skips the
submission when the fingerprint still matches and its results are still there. So a run killed
halfway continues where it stopped (the submission being graded at the kill has no record and
is graded again from scratch), a second run changes nothing, and a fixed hidden check or an
upgraded grader regrades everyone.

Only a final result is recorded: a `grading-error` (the grader, not the submission, failed) is
never recorded, and the record of a submission is removed before it is graded again (`forget`),
so a failed regrade is retried by the next run instead of reviving the earlier result.
`autograde --force` ignores the records of the submissions it names.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from grader.bridge import gradebook
from grader.bridge.course import LIBRARY_PACKAGE, CourseLayout
from grader.records.flags import GRADING_ERROR

STATE_VERSION = 2  # 2: the grader's code joined the fingerprint

# The packages whose code decides a score: the grader (hidden checks, trusted verdicts, nbgrader
# steps) and the course library the checks compute references with.
CODE_PACKAGES = ("grader", LIBRARY_PACKAGE)


def _hash_tree(h, root: Path, suffix: str = "") -> None:
    """Names and bytes of every regular file under root (only names ending with `suffix`), in
    a fixed order (links not followed, __pycache__ skipped)."""
    if not root.is_dir():
        h.update(b"<absent>")
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(suffix):
                continue
            path = Path(dirpath) / name
            h.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_file() and not path.is_symlink():
                h.update(hashlib.sha256(path.read_bytes()).digest())


def package_dir(name: str) -> Path | None:
    """Where the package `name` is imported from (without importing it), or None."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def code_version(*folders: Path | None) -> str:
    """sha256 of the .py files of the given package folders (the grader's version): any edit
    of a hidden check, of the grader or of the library gives another value."""
    h = hashlib.sha256()
    for folder in folders:
        h.update(b"<package>")
        _hash_tree(h, folder if folder is not None else Path("/nonexistent"), ".py")
    return h.hexdigest()


def grader_code_version() -> str:
    """code_version of CODE_PACKAGES as this process imports them (grader/checks/ included)."""
    return code_version(*(package_dir(name) for name in CODE_PACKAGES))


def fingerprint(settings, submissions: Path, student_id: str, assignment_id: str) -> str:
    h = hashlib.sha256(f"v{STATE_VERSION}".encode())
    _hash_tree(h, Path(submissions) / student_id / assignment_id)
    _hash_tree(h, CourseLayout(Path(settings.course_root)).source(assignment_id))
    key = {"timeout": settings.timeout, "sandbox": settings.sandbox,
           "limits": settings.limits.__dict__, "db_url": settings.db_url,
           "kernel_manager_class": settings.kernel_manager_class,
           "code": grader_code_version()}
    h.update(json.dumps(key, sort_keys=True, default=str).encode())
    return h.hexdigest()


def state_path(course_root: Path, student_id: str, assignment_id: str) -> Path:
    return CourseLayout(Path(course_root)).state(student_id, assignment_id)


def mark_done(settings, student_id: str, assignment_id: str, outcome) -> None:
    """Record a finished submission (called last, after its feedback is written). A
    grading-error is not a result: it is never recorded, and the next run grades it again."""
    submissions = getattr(settings, "submissions_root", None)
    if submissions is None or GRADING_ERROR in outcome.flags:
        return
    record = {"fingerprint": fingerprint(settings, submissions, student_id, assignment_id),
              "outcome": {"student_id": outcome.student_id,
                          "assignment_id": outcome.assignment_id, "flags": list(outcome.flags),
                          "autograded": outcome.autograded, "seconds": outcome.seconds,
                          "problem": outcome.problem}}
    path = state_path(settings.course_root, student_id, assignment_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a kill leaves either no record or a whole one


def forget(course_root: Path, student_id: str, assignment_id: str) -> None:
    """Drop a submission's record before it is graded again: until the new result is recorded,
    a later run must grade it (the earlier result's files are being replaced)."""
    state_path(course_root, student_id, assignment_id).unlink(missing_ok=True)


def previous_outcome(settings, submissions: Path, student_id: str,
                     assignment_id: str) -> dict | None:
    """The recorded outcome when this submission was graded with the same inputs, else None."""
    path = state_path(settings.course_root, student_id, assignment_id)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("outcome"), dict):
        return None
    if record.get("fingerprint") != fingerprint(settings, submissions, student_id,
                                                assignment_id):
        return None
    if GRADING_ERROR in record["outcome"].get("flags", []):
        return None  # never final (a record of an older grader may hold one)
    feedback = CourseLayout(Path(settings.course_root)).feedback_page(student_id, assignment_id)
    if not feedback.exists():
        return None
    if not gradebook.has_submission(settings.db_url, student_id, assignment_id):
        return None
    return record["outcome"]
