"""Resume an autograde run: a submission graded once is not graded again.

After grade_one finishes a submission (gradebook rows, autograded notebook and feedback all
written), it records DIR/state/<student>/<assignment>.json with a fingerprint of everything the
result depends on: the submitted files, the assignment's source, and the grading settings. A
later run skips the submission when the fingerprint still matches and its results are still
there. So a run killed halfway continues where it stopped (the submission being graded at the
kill has no record and is graded again from scratch), and a second run changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from grader import gradebook
from grader.course import CourseLayout

STATE_VERSION = 1


def _hash_tree(h, root: Path) -> None:
    """Names and bytes of every regular file under root, in a fixed order (links not followed)."""
    if not root.is_dir():
        h.update(b"<absent>")
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            h.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_file() and not path.is_symlink():
                h.update(hashlib.sha256(path.read_bytes()).digest())


def fingerprint(settings, submissions: Path, student_id: str, assignment_id: str) -> str:
    h = hashlib.sha256(f"v{STATE_VERSION}".encode())
    _hash_tree(h, Path(submissions) / student_id / assignment_id)
    _hash_tree(h, Path(settings.course_root) / "source" / assignment_id)
    key = {"timeout": settings.timeout, "sandbox": settings.sandbox,
           "limits": settings.limits.__dict__, "db_url": settings.db_url,
           "kernel_manager_class": settings.kernel_manager_class}
    h.update(json.dumps(key, sort_keys=True, default=str).encode())
    return h.hexdigest()


def state_path(course_root: Path, student_id: str, assignment_id: str) -> Path:
    return CourseLayout(Path(course_root)).state(student_id, assignment_id)


def mark_done(settings, student_id: str, assignment_id: str, outcome) -> None:
    """Record a finished submission (called last, after its feedback is written)."""
    submissions = getattr(settings, "submissions_root", None)
    if submissions is None:
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


def previous_outcome(settings, submissions: Path, student_id: str,
                     assignment_id: str) -> dict | None:
    """The recorded outcome when this submission was graded with the same inputs, else None."""
    path = state_path(settings.course_root, student_id, assignment_id)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint(settings, submissions, student_id,
                                                assignment_id):
        return None
    feedback = CourseLayout(Path(settings.course_root)).feedback_page(student_id, assignment_id)
    if not feedback.exists():
        return None
    if not gradebook.has_submission(settings.db_url, student_id, assignment_id):
        return None
    return record["outcome"]

