"""`python -m grader autograde`: a folder of submissions -> gradebook, CSVs and feedback.

DIR becomes an nbgrader course directory:
  DIR/source/<id>/          copied from solutions/ (hidden tests live there)
  DIR/release/<id>/         generate_assignment's output (registers the source cells)
  DIR/submitted/<s>/<id>/   COPIED from SUBMISSIONS (the originals are never touched)
  DIR/autograded/, DIR/feedback/, DIR/logs/, DIR/gradebook.db, DIR/nbgrader_config.py
  DIR/.grader/    the grader's own files (grader.bridge.course.CourseLayout): resume records,
                  run records, the setup lock, and templates/<id>.db, the private gradebook
                  nbgrader's child process starts from
Each submission is graded by one worker (a process each with --jobs N), as the named list of
steps AUTOGRADE_STEPS, each taking and returning one grader.bridge.submission.Submission.
nbgrader's Autograde and GenerateFeedback run in a child process of the worker, as an
unprivileged user when the grader is root (grader.bridge.nbgrader_steps), on a private copy of
the hand-in, and write only the child's private gradebook; the trusted verdicts of
grader.judging.verdict (checks in this process, student code in the notebook's kernel or a
sandboxed subject) come back as data; the `record` step then writes the real gradebook once,
with the verdicts' scores, and the worker writes the executed notebook and the feedback page
without following links.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import re
import time
import traceback
from collections.abc import Callable, Collection
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from nbgrader.utils import capture_log, determine_grade, parse_utc
from sqlalchemy.exc import OperationalError
from traitlets.config import Config

from grader.bridge import cell_roles, gradebook, manual, nbgrader_steps
from grader.bridge.course import (
    CourseLayout,
    Roots,
    list_assignments,
    migrate_legacy_state,
    notebook_problem,
    pick_assignments,
    put_venv_on_path,
    remove_tree,
    replace_tree,
    sqlite_url,
)
from grader.bridge.nbgrader_config import DEFAULT_TIMEOUT, config_file_text
from grader.bridge.nbgrader_steps import grading_config
from grader.bridge.submission import Submission
from grader.commands.feedback_assets import install_mathjax, local_mathjax
from grader.files import (
    copy_hand_in,
    lstat_kind,
    make_folders,
    name_problem,
    read_bytes,
    safe_name,
    write_atomic,
)
from grader.integrity.sanitize import sanitize_notebook
from grader.integrity.similarity import flag_similar
from grader.isolation.limits import Limits
from grader.isolation.sandbox import require_sandbox, sandbox_available
from grader.records import flags as flag_names
from grader.records import resume
from grader.records import shard as sharding
from grader.records.flags import SubmissionContext, collect_flags
from grader.records.progress import Progress
from grader.records.report import (
    SubmissionGrade,
    refused_as_json,
    save_run_record,
    write_placeholder_feedback,
    write_reports,
    write_review_list,
)

DB_LOCKED = "database is locked"
DB_RETRIES = 3
VERDICT_KEY = "grader_verdict"  # a test cell's failed trusted verdict, in the stored notebook
MAX_VERDICT_CHARS = 1500  # of that message, on the feedback page
UNDEFINED_NAME = re.compile(r"NameError: name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


@dataclass(frozen=True)
class GradingSettings:
    """Everything a worker process needs to grade one submission (picklable)."""

    course_root: Path
    db_url: str
    timeout: int = DEFAULT_TIMEOUT
    # "package.module.Class" of a jupyter_client KernelManager: how kernels are launched.
    # None = nbgrader's default. A sandbox plugs in here.
    kernel_manager_class: str | None = None
    # run each kernel in grader.isolation.sandbox (bubblewrap); False: --no-sandbox
    sandbox: bool = True
    limits: Limits = Limits()  # notebook wall clock, memory, processes, output caps
    submissions_root: Path | None = None  # for grader.records.resume's fingerprint of the hand-in

    def config(self) -> Config:
        return grading_config(self.course_root, self.db_url, **self.child_settings())

    def run_limits(self) -> Limits:
        """The limits a submission is graded under: `limits` with the cell timeout set."""
        return Limits(**{**self.limits.__dict__, "cell_timeout": self.timeout})

    def child_settings(self) -> dict:
        """grading_config's arguments but the paths: what nbgrader's child process needs."""
        return {"timeout": self.timeout, "kernel_manager_class": self.kernel_manager_class,
                "sandbox": self.sandbox, "limits": dict(self.limits.__dict__)}

    def coursedir(self, assignment_id: str, student_id: str = ".") -> CourseDirectory:
        coursedir = CourseDirectory(config=self.config())
        coursedir.assignment_id = assignment_id
        coursedir.student_id = student_id
        return coursedir


@dataclass
class Outcome:
    """How grading one (student, assignment) went."""

    student_id: str
    assignment_id: str
    flags: list[str] = field(default_factory=list)
    autograded: bool = False  # nbgrader ran the notebook to the end
    seconds: float = 0.0
    problem: str = ""  # why it was not autograded, for the placeholder feedback

    @property
    def graded(self) -> bool:
        """A grade was recorded (0 for missing/invalid/dead-kernel); only grading-error is not."""
        return flag_names.GRADING_ERROR not in self.flags


def _run(app) -> dict:
    app.log.setLevel(logging.INFO)
    return capture_log(app)


def _log_text(result: dict) -> str:
    return result.get("log", "") + result.get("error", "")


def register_assignment(settings: GradingSettings, assignment_id: str) -> None:
    """generate_assignment in DIR: records the source's cells (and points) in the gradebook."""
    app = GenerateAssignment(coursedir=settings.coursedir(assignment_id),
                             config=settings.config())
    app.force = True
    result = _run(app)
    if not result["success"]:
        raise RuntimeError(f"nbgrader generate_assignment failed for {assignment_id}:\n"
                           f"{_log_text(result)}")


def write_template(settings: GradingSettings, assignment_id: str) -> None:
    """The private gradebook nbgrader's child process starts from (grader.bridge.nbgrader_steps):
    the assignment registered from DIR/source in a scratch course, no student in it."""
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory(prefix="grader-template-") as tmp:
        scratch = Path(tmp)
        replace_tree(CourseLayout(settings.course_root).source(assignment_id),
                     CourseLayout(scratch).source(assignment_id))
        register_assignment(dataclasses.replace(settings, course_root=scratch,
                                                db_url=sqlite_url(scratch)), assignment_id)
        data = CourseLayout(scratch).gradebook().read_bytes()
    path = nbgrader_steps.template_path(settings.course_root, assignment_id)
    make_folders(settings.course_root, *path.parent.relative_to(settings.course_root).parts)
    write_atomic(path, data, mode=0o600)


def register_students(settings: GradingSettings, student_ids: list[str]) -> None:
    """Add every student to the gradebook before workers start. nbgrader's Autograde creates a
    missing student with find-then-insert, so two workers grading the same new student's two
    assignments at once could both insert it (UNIQUE constraint failed: student.id)."""
    gradebook.register_students(settings.db_url, student_ids)


# --------------------------------------------------------------------------- one submission
#
# The life of one submission is AUTOGRADE_STEPS, a named list of steps as nbgrader's converters
# are (autograde_preprocessors): each takes the Submission (grader.bridge.submission) and
# returns it, one concern each. grade_one runs them in a worker process, in order.


Step = Callable[[Submission], Submission]


def grade_one(settings: GradingSettings, student_id: str, assignment_id: str) -> Outcome:
    """Autograde one staged submission (runs in a worker process): AUTOGRADE_STEPS in order.

    nbgrader's steps on the student's files run in a child process as an unprivileged user
    (grader.bridge.nbgrader_steps); this process runs no student code and reads nothing a student's
    process wrote: it records the gradebook from the child's data and writes the executed
    notebook and the feedback page without following links."""
    submission = Submission(student_id, assignment_id, settings, started=time.monotonic())
    try:
        for step in AUTOGRADE_STEPS:
            submission = step(submission)
    finally:
        close_child(submission)  # whatever a step raised: the child and its user end
    return Outcome(student_id, assignment_id, submission.flags, submission.autograded,
                   submission.seconds, submission.problem)


def open_child(sub: Submission) -> Submission:
    """nbgrader's child process (an unprivileged user when root) and its private folder W."""
    put_venv_on_path()
    sub.running["child"] = nbgrader_steps.StepsChild(sub.settings.child_settings(),
                                                     _child_seconds(sub.limits))
    return sub


def start_verdict(sub: Submission) -> Submission:
    """Student code runs once: once nbgrader's kernel has run the notebook, it serves the
    trusted verdict (checks here, answers there) on a private channel; the verdict waits for it
    in a thread while nbgrader works (and starts a fresh sandboxed subject where the kernel
    does not serve)."""
    # imports torch: only where a submission is graded, not in a run's main process, which
    # hands every submission to --jobs worker processes
    from grader.judging import verdict

    child = sub.running["child"]
    try:
        channel = verdict.KernelChannel(child.server.root, child.uid)
    except OSError:  # no socket here: a fresh subject judges, as the kernel never serves
        channel = None
    judging = ThreadPoolExecutor(max_workers=1)
    sub.running["channel"] = channel
    sub.running["verdicts"] = judging.submit(verdict.judge_submission, sub, channel)
    judging.shutdown(wait=False)
    return sub


def run_notebook(sub: Submission) -> Submission:
    """nbgrader's Autograde in the child, on a copy of the staged hand-in (its kernel serving
    the verdict after the notebook): nbgrader's log, and the executed notebook as data (None
    when it did not run to the end). Nothing is recorded yet."""
    channel = sub.running.get("channel")
    try:
        ran = nbgrader_steps.autograde(sub.running["child"], sub,
                                       "" if channel is None else str(channel.path))
    except (RuntimeError, OSError, ValueError) as e:
        sub.log = f"nbgrader's child process failed: {e}\n"
        return sub
    finally:
        if channel is not None:
            channel.notebook_ended()
    sub.log = ran["log"]
    if ran["ok"]:
        try:
            sub.executed = nbformat.reads(ran["notebook"], as_version=4)
        except Exception:  # noqa: BLE001 - the submission is flagged grading-error
            sub.log += "\n" + traceback.format_exc()
    return sub


def await_verdicts(sub: Submission) -> Submission:
    """The trusted verdicts (grader.judging.verdict: data), or why there are none."""
    try:
        sub.verdicts = sub.running.pop("verdicts").result()
    except Exception as e:  # noqa: BLE001 - no trusted verdict: no autograded points
        sub.verdict_error = e
    return sub


def record(sub: Submission) -> Submission:
    """The gradebook, written once, with the final scores: the submission (and its hand-in's
    timestamp), each cell's autograded score -- the trusted verdict's, or 0 for every
    autograded cell where no verdict could be reached -- and the late penalty. nbgrader's
    child wrote only its private gradebook; here nbgrader's own SaveAutoGrades and
    AssignLatePenalties run on the executed notebook (FinalAutoGrades: SaveAutoGrades with the
    verdicts' scores in place of the kernel's, which are kept in `kernel_scores` for the
    comparison). A failure to record: the submission is not autograded (grading-error)."""
    if sub.executed is None:
        return sub
    try:
        _record_gradebook(sub)
    except Exception:  # noqa: BLE001 - the submission is flagged grading-error, the run goes on
        sub.log += "\n" + traceback.format_exc()
        sub.executed = None
    return sub


class FinalAutoGrades(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, recording `final(grade_id, kernel score)` instead of the
    score nbgrader's run of the cell gives (clamped to the cell's points as the gradebook has
    them); the kernel's scores are kept in `kernel`, the recorded ones in `recorded`."""

    def __init__(self, final: Callable[[str, float], float], **kwargs):
        super().__init__(**kwargs)
        self.final = final
        self.kernel: dict[str, float] = {}
        self.recorded: dict[str, float] = {}

    def _add_score(self, cell: NotebookNode, resources) -> None:
        grade = self.gradebook.find_grade(cell_roles.grade_id(cell), self.notebook_id,
                                          self.assignment_id, self.student_id)
        auto_score, _ = determine_grade(cell, self.log)
        if auto_score is not None:
            kernel = min(max(float(auto_score), 0.0), float(grade.max_score))
            self.kernel[grade.name] = kernel
            auto_score = self.recorded[grade.name] = self.final(grade.name, kernel)
        grade.auto_score = auto_score
        # as nbgrader: a hand grade given earlier, or no autograded score, needs a look
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        self.gradebook.db.commit()


def _final_score(sub: Submission) -> Callable[[str, float], float]:
    if sub.verdict_error is not None:
        return lambda grade_id, kernel: 0.0
    trusted = {v.grade_id: v.score for v in sub.verdicts or []}
    return lambda grade_id, kernel: trusted.get(grade_id, kernel)


def _record_gradebook(sub: Submission) -> None:
    resources = {"nbgrader": {"notebook": sub.assignment_id, "assignment": sub.assignment_id,
                              "student": sub.student_id, "db_url": sub.db_url}}
    timestamp = _staged_timestamp(sub.submitted / "timestamp.txt")
    config = sub.settings.config()
    for attempt in range(DB_RETRIES):
        try:
            # (open_gradebook silences the autoflush warnings add_submission trips; rows are right)
            with gradebook.open_gradebook(sub.db_url) as gb:
                extra = {"timestamp": timestamp} if timestamp else {}
                gb.update_or_create_submission(sub.assignment_id, sub.student_id, **extra)
                scores = FinalAutoGrades(_final_score(sub), config=config)
                scores.preprocess(copy.deepcopy(sub.executed), resources)
                AssignLatePenalties(config=config).preprocess(copy.deepcopy(sub.executed),
                                                              resources)
            sub.kernel_scores, sub.scores = scores.kernel, scores.recorded
            return
        except OperationalError as e:  # SQLite with --jobs N: another worker holds the lock
            if DB_LOCKED not in str(e) or attempt == DB_RETRIES - 1:
                raise
            time.sleep(1 + attempt)


def store_notebook(sub: Submission) -> Submission:
    """DIR/autograded/<s>/<id>/<id>.ipynb, which formgrader and the feedback page render:
    sanitised, each failed trusted verdict's message in its cell's metadata (the grader's
    own key: whatever the child sent under it is dropped), written without following links."""
    if sub.executed is None:
        return sub
    nb = sanitize_notebook(copy.deepcopy(sub.executed))
    failed = {v.grade_id: v.message for v in sub.verdicts or [] if v.score < v.max_score}
    for cell in nb.cells:
        cell.metadata.pop(VERDICT_KEY, None)
        gid = cell_roles.grade_id(cell)
        if cell.cell_type == "code" and gid in failed:
            cell.metadata[VERDICT_KEY] = failed[gid][:MAX_VERDICT_CHARS]
    folder = make_folders(sub.course_root, CourseLayout.AUTOGRADED, sub.student_id,
                          sub.assignment_id)
    write_atomic(folder / f"{sub.assignment_id}.ipynb", nbformat.writes(nb).encode("utf-8"))
    return sub


def flag(sub: Submission) -> Submission:
    """The flags (grader.records.flags) and the review note, written once with every reason:
    the run's flags (timeout, kernel-died, ...), the tamper scan's, the verdict's (how its
    subject ended; where the kernel's scores differ from the verdicts'; names the verdict found
    undefined)."""
    try:
        _assess(sub)
    finally:  # a note from an earlier grading is replaced (or removed) whatever was found
        flag_names.write_review(sub.course_root, sub.student_id, sub.assignment_id, sub.notes)
    return sub


def _assess(sub: Submission) -> None:
    ctx = SubmissionContext(sub.course_root, sub.student_id, sub.assignment_id,
                            sub.autograded, sub.log)
    sub.flag(*collect_flags(ctx))
    sub.notes += ctx.notes
    if not sub.autograded:
        died = flag_names.KERNEL_DIED in sub.flags
        sub.problem = ("the kernel died while running your notebook" if died
                       else "the grader failed on this notebook")
        return
    if sub.verdict_error is not None:
        sub.flag(flag_names.GRADING_ERROR)
        sub.log += f"\ntrusted verdict failed: {sub.verdict_error!r}\n"
        return
    from grader.judging.verdict import kernel_differences

    sub.flag(*sub.verdicts.flags)
    if sub.verdicts.flags:
        sub.notes += [f"verdict: {note}\n" for note in sub.verdicts.notes]
    sub.flag(*flag_names.verdict_flags(kernel_differences(sub.kernel_scores, sub.verdicts),
                                       sub.notes))
    sub.flag(*_flag_undefined_names(sub, sub.verdicts))


def feedback(sub: Submission) -> Submission:
    """nbgrader's GenerateFeedback in the same child: DIR/feedback/<s>/<id>/<id>.html."""
    if not sub.autograded:
        return sub
    ok, log = _render_feedback(sub, sub.running["child"])
    sub.log += log
    if not ok:
        sub.flag(flag_names.GRADING_ERROR)
    return sub


def close_child(sub: Submission) -> Submission:
    """nbgrader's child, every process of its user and W end (the verdict's channel too)."""
    channel = sub.running.pop("channel", None)
    if channel is not None:
        channel.notebook_ended()
    child = sub.running.pop("child", None)
    if child is not None:
        child.close()
    return sub


def write_log(sub: Submission) -> Submission:
    """DIR/logs/<s>/<id>.txt: nbgrader's log and the grader's lines."""
    sub.log_file.parent.mkdir(parents=True, exist_ok=True)
    sub.log_file.write_text(sub.log, encoding="utf-8")
    sub.seconds = time.monotonic() - sub.started
    return sub


def mark_done(sub: Submission) -> Submission:
    """records.resume: a later run (after a kill, or a second run) reuses this result; a
    grading-error is not a result and is graded again."""
    if flag_names.GRADING_ERROR not in sub.flags:
        resume.mark_done(sub.settings, sub.student_id, sub.assignment_id,
                         Outcome(sub.student_id, sub.assignment_id, sub.flags, sub.autograded,
                                 sub.seconds, sub.problem))
    return sub


AUTOGRADE_STEPS: list[Step] = [
    open_child,      # nbgrader's child process, unprivileged, and its folder W
    start_verdict,   # the trusted verdict waits, in a thread, for the kernel to serve it
    run_notebook,    # W staged; nbgrader's Autograde runs the notebook: log, executed notebook
    await_verdicts,  # the verdicts (data), or why there are none
    record,          # the gradebook, once, with the final scores
    store_notebook,  # DIR/autograded/: sanitised, with each failed verdict's message
    flag,            # flags and review notes
    feedback,        # nbgrader's GenerateFeedback: DIR/feedback/
    close_child,     # the child and its user end
    write_log,       # DIR/logs/
    mark_done,       # records.resume
]


def _child_seconds(limits: Limits) -> float:
    """How long nbgrader's child may take for one request before it is killed: the notebook,
    then its kernel serving the verdict (each limited to the notebook's time)."""
    return 2 * limits.notebook_timeout + nbgrader_steps.STARTUP_SECONDS


def _staged_timestamp(path: Path):
    """The hand-in's timestamp.txt (nbgrader's late penalties), as Autograde reads it."""
    if lstat_kind(path) != "file":
        return None
    text = read_bytes(path, limit=1000).decode("utf-8", "replace").strip()
    return parse_utc(text) if text else None


def undefined_names(judged: list | None, known: set[str] = frozenset()) -> list[str]:
    """Names a failed trusted verdict found undefined, but for `known` ones (what the
    instructor's notebook defines: an answer that crashed leaves those undefined too). Where
    the notebook's kernel could not answer the verdict (it died), a fresh subject runs the
    given cells and the answer cells only, so a helper the student wrote in another cell is
    missing there."""
    return sorted({name for v in judged or [] if v.score < v.max_score
                   for name in UNDEFINED_NAME.findall(v.message)} - set(known))


def _instructor_names(sub: Submission) -> set[str]:
    """Top-level names defined by any code cell of the source notebook (the instructor's)."""
    from grader.judging.verdict import _defined_names

    nb = nbformat.reads(read_bytes(sub.source_notebook).decode("utf-8"), as_version=4)
    return {name for cell in nb.cells if cell.cell_type == "code"
            for name in _defined_names(cell.source)}


def _flag_undefined_names(sub: Submission, judged: list | None) -> list[str]:
    """Flag `undefined-names` and say which in DIR/review/<s>/<id>.txt (rather than losing
    the points silently where the kernel, which ran every cell, found them)."""
    if not undefined_names(judged):
        return []
    names = undefined_names(judged, _instructor_names(sub))
    if not names:
        return []
    sub.notes.append(
        f"undefined: the grader's run had no {', '.join(names)} (where the notebook's "
        f"kernel could not answer the grader, only the given and answer cells are run again; "
        f"a helper defined in another cell is then missing)\n")
    return [flag_names.UNDEFINED_NAMES]


def generate_feedback(settings: GradingSettings, student_id: str, assignment_id: str,
                      child: nbgrader_steps.StepsChild | None = None) -> tuple[bool, str]:
    """nbgrader's generate_feedback for one autograded submission (`grader export`'s entry,
    which regenerates a class's pages after hand grading; autograde's `feedback` step calls
    _render_feedback with its Submission)."""
    return _render_feedback(Submission(student_id, assignment_id, settings), child)


def _render_feedback(sub: Submission,
                     child: nbgrader_steps.StepsChild | None = None) -> tuple[bool, str]:
    """DIR/feedback/... HTML with the gradebook's current scores and comments (hand grades
    included), and the message of each failed trusted verdict under its cell. nbgrader renders
    the page in `child` (or a new one), as an unprivileged user; this process reads the stored
    notebook and the gradebook and writes the page, never through a link. Runs no student
    code."""
    try:
        nb = nbformat.reads(read_bytes(sub.autograded_notebook).decode("utf-8"), as_version=4)
        grades = feedback_grades(sub)
        text = nbformat.writes(with_verdict_messages(nb))
        if child is None:
            with nbgrader_steps.StepsChild(sub.settings.child_settings(),
                                           _child_seconds(sub.limits)) as own:
                page = nbgrader_steps.feedback(own, sub, text, grades)
        else:
            page = nbgrader_steps.feedback(child, sub, text, grades)
        if page["ok"]:
            folder = make_folders(sub.course_root, CourseLayout.FEEDBACK, sub.student_id,
                                  sub.assignment_id)
            # MathJax from DIR/feedback/_assets/, not a CDN: the page works offline
            install_mathjax(sub.course_root / CourseLayout.FEEDBACK)
            write_atomic(folder / f"{sub.assignment_id}.html",
                         local_mathjax(page["html"]).encode("utf-8"))
    except (RuntimeError, OSError, ValueError) as e:
        return False, f"feedback failed: {e}\n"
    return page["ok"], page["log"]


def feedback_grades(sub: Submission) -> dict:
    """What nbgrader's GetGrades reads, as data: each cell's score, points and comment, the
    notebook's score, points and late penalty (grader.bridge.nbgrader_steps.GivenGrades)."""
    with gradebook.open_gradebook(sub.db_url) as gb:
        notebook = gb.find_submission_notebook(sub.assignment_id, sub.assignment_id,
                                               sub.student_id)
        cells: dict[str, dict] = {}
        for grade in notebook.grades:
            cells.setdefault(grade.name, {}).update(score=grade.score,
                                                    max_score=grade.max_score)
        for comment in notebook.comments:
            cells.setdefault(comment.name, {})["comment"] = comment.comment
        return {"cells": cells, "score": notebook.score, "max_score": notebook.max_score,
                "late_penalty": notebook.late_submission_penalty or 0}


def with_verdict_messages(nb: NotebookNode) -> NotebookNode:
    """The notebook with each failed trusted verdict's message shown as a text output under its
    test cell (plain text, escaped when the page renders it; control characters removed)."""
    for cell in nb.cells:
        message = cell.get("metadata", {}).get(VERDICT_KEY)
        if cell.cell_type != "code" or not isinstance(message, str) or not message:
            continue
        clean = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in message)
        hint = ("\nIf that name is a helper you wrote in another cell: where your notebook's "
                "kernel stopped, the grader runs the given cells and your answer cells only, so "
                "define helpers inside an answer cell.\n"
                if UNDEFINED_NAME.search(message) else "")
        cell.outputs.append(nbformat.v4.new_output(
            "stream", name="stdout",
            text=f"[grader] Checked by the grader on your code: this cell failed.\n"
                 f"{clean[:MAX_VERDICT_CHARS]}\n{hint}"))
    return nb


def record_zero(settings: GradingSettings, student_id: str, assignment_id: str) -> None:
    """Give every cell of a submission nbgrader could not run 0 points (as nbgrader does for a
    missing notebook), so the gradebook and the CSVs have a row for it."""
    gradebook.record_zero(settings.db_url, student_id, assignment_id)


def stage(submissions: Path, course_root: Path, student_id: str,
          assignment_id: str) -> tuple[list[str], str]:
    """Copy one submission into DIR/submitted (links and special files refused, never
    followed); return (staging flags, problem text)."""
    src = submissions / student_id / assignment_id
    for old in CourseLayout(course_root).results(student_id, assignment_id):
        if lstat_kind(old) != "missing":
            remove_tree(old)  # results of an earlier run must not survive
    staged = CourseLayout(course_root).submitted(student_id, assignment_id)
    flags, refused = [], []
    if lstat_kind(submissions / student_id) == "dir" and lstat_kind(src) == "dir":
        staged.parent.mkdir(parents=True, exist_ok=True)
        refused = copy_hand_in(src, staged)
    elif lstat_kind(src) not in ("missing", "dir"):
        refused = [f"{assignment_id} (a link or special file)"]
    if refused:
        flags.append(flag_names.UNSAFE_FILE)
    notebook = staged / f"{assignment_id}.ipynb"
    unsafe = f" (refused: {', '.join(refused)})" if refused else ""
    if lstat_kind(notebook) != "file":
        return [*flags, flag_names.MISSING_NOTEBOOK], \
            f"no {assignment_id}/{assignment_id}.ipynb found{unsafe}"
    problem = notebook_problem(notebook)
    if problem:
        return [*flags, flag_names.INVALID_NOTEBOOK], \
            f"{notebook.name} is not a valid notebook ({problem})"
    return flags, unsafe


def sqlalchemy_url(db_url: str | None) -> str | None:
    """SQLAlchemy 2 reads `postgresql://` as psycopg 3; the pinned driver is psycopg2, so name
    it unless psycopg 3 is installed."""
    if db_url and db_url.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + db_url[len("postgresql://"):]
    return db_url


def find_students(submissions: Path) -> tuple[list[str], dict[str, str]]:
    """(student ids to grade, {refused folder name: why}). Names are checked before anything
    runs (nbgrader expands globs in ids; a non-UTF-8 name breaks every later step); a link in
    place of a student folder is refused too. Hidden entries (.git, .DS_Store) are ignored."""
    good, refused = [], {}
    for name in sorted(os.listdir(submissions)):
        if name.startswith(".") and name not in (".", ".."):
            continue
        kind = lstat_kind(submissions / name)
        if kind == "file":
            continue  # a stray file next to the student folders
        why = name_problem(name) or (None if kind == "dir" else f"a {kind}, not a folder")
        if why:
            refused[name] = why
        else:
            good.append(name)
    return good, refused


def find_assignments(submissions: Path, roots: Roots, assignment_id: str | None,
                     students: list[str], log: Callable[[str], None]) -> list[str]:
    """--assignment, else every known assignment that at least one student submitted."""
    if assignment_id is not None:
        return pick_assignments(roots, assignment_id)
    known = set(list_assignments(roots.solutions))
    handed_in = {name for s in students for name in os.listdir(submissions / s)
                 if lstat_kind(submissions / s / name) == "dir"}
    for unknown in sorted(handed_in - known):
        log(f"warning: ignoring submitted folder(s) {safe_name(unknown)}: no such assignment in "
            f"{roots.solutions}")
    found = sorted(handed_in & known)
    if not found:
        raise ValueError(f"no submissions of a known assignment in {submissions} "
                         f"(expected <student_id>/<assignment_id>/<assignment_id>.ipynb with "
                         f"assignment ids {sorted(known)})")
    return found


def refused_rows(db_url: str, refused: dict[str, str], assignments: list[str],
                 log: Callable[[str], None]) -> list[SubmissionGrade]:
    """One 0-point `bad-name` row per refused student folder and assignment, the name spelled
    safely (grader.files.safe_name); nothing of these folders is read or graded."""
    rows = []
    max_scores = gradebook.max_scores(db_url, assignments) if refused else {}
    for name, why in sorted(refused.items()):
        log(f"skipped student folder {safe_name(name)}: {why} [{flag_names.BAD_NAME}]")
        rows += [SubmissionGrade(safe_name(name), aid, 0.0, max_scores[aid], False,
                                 (flag_names.BAD_NAME,)) for aid in assignments]
    return rows


def _check_dirs(submissions: Path, workdir: Path) -> None:
    if not submissions.is_dir():
        raise ValueError(f"submissions folder {submissions} does not exist")
    if workdir == submissions or workdir.is_relative_to(submissions) or \
            submissions.is_relative_to(workdir):
        raise ValueError(f"--workdir {workdir} and the submissions folder {submissions} must not "
                         "contain each other (submitted files are never modified)")


def _check_force_students(force: bool, force_students: Collection[str] | None,
                          students: list[str], refused: dict[str, str]) -> None:
    """ValueError (before anything is graded) for --student without --force, or naming a
    student with no folder in SUBMISSIONS."""
    if force_students is None:
        return
    if not force:
        raise ValueError("--student only chooses whom --force regrades; add --force")
    unknown = sorted(set(force_students) - set(students))
    if unknown:
        why = "; ".join(f"{safe_name(s)}: " + (f"folder refused ({refused[s]})" if s in refused
                                                else "no such folder") for s in unknown)
        shown = ", ".join(students[:20]) + (" ..." if len(students) > 20 else "")
        raise ValueError(f"--student: nothing to regrade for {why} (students in SUBMISSIONS: "
                         f"{shown or 'none'})")


def run_jobs(settings: GradingSettings, todo: list[tuple[str, str]], jobs: int,
             log: Callable[[str], None],
             on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Grade `todo` pairs (student, assignment), `jobs` at a time in separate processes;
    on_outcome(outcome) as each one finishes (the progress bar)."""
    outcomes = []
    if jobs == 1:
        for student_id, assignment_id in todo:
            outcomes.append(grade_one(settings, student_id, assignment_id))
            log(_describe(outcomes[-1]))
            on_outcome(outcomes[-1])
        return outcomes
    # spawn: a fresh interpreter per worker (no forked zmq/asyncio/sqlite state)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(grade_one, settings, s, a) for s, a in todo]
        for future in as_completed(futures):  # in finishing order, for the progress bar
            outcomes.append(future.result())
            log(_describe(outcomes[-1]))
            on_outcome(outcomes[-1])
    return outcomes


def _describe(outcome: Outcome) -> str:
    flags = f" [{';'.join(outcome.flags)}]" if outcome.flags else ""
    return (f"graded {outcome.student_id}/{outcome.assignment_id} in "
            f"{outcome.seconds:.1f} s{flags}")


def autograde(submissions: Path, workdir: Path, roots: Roots, assignment_id: str | None = None,
              jobs: int = 1, db_url: str | None = None, timeout: int = DEFAULT_TIMEOUT,
              kernel_manager_class: str | None = None,
              log: Callable[[str], None] = print, sandbox: bool | None = True,
              limits: Limits | None = None, similarity: bool = True,
              shard: sharding.Shard = sharding.WHOLE_CLASS,
              progress: Progress | None = None, force: bool = False,
              force_students: Collection[str] | None = None) -> list[Outcome]:
    """Grade every SUBMISSIONS/<student>/<assignment>/; write the CSVs and feedback into workdir.

    sandbox=True refuses to run (SandboxUnavailable) where the sandbox cannot be set up;
    None uses it when available (the `check` command grades the instructor's own solutions).
    Submissions already graded by an earlier run with the same files, settings and grader code
    are not graded again (grader.records.resume), so a killed run continues and a second run changes
    nothing; force=True grades them again all the same (only those of `force_students` when
    given; the rest of the class resumes as usual). Hand grades survive either way
    (grader.bridge.manual). similarity=False skips grader.integrity.similarity (`check` hands in the
    solution itself). shard: grade only that share of the class (grader.records.shard); a sharded
    run records what it graded in DIR/.grader/shards/ and leaves the class's CSVs to `grader export`
    (and the similarity report, which needs the whole class, to `grader similarity` after it).
    """
    submissions, workdir = Path(submissions).resolve(), Path(workdir).resolve()
    _check_dirs(submissions, workdir)
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    if sandbox:
        require_sandbox()
    elif sandbox is None:
        sandbox = sandbox_available()[0]
    put_venv_on_path()
    students, refused_students = find_students(submissions)
    _check_force_students(force, force_students, students, refused_students)
    assignments = find_assignments(submissions, roots, assignment_id, students, log)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = GradingSettings(workdir, sqlalchemy_url(db_url) or sqlite_url(workdir), timeout,
                               kernel_manager_class, sandbox, limits or Limits(),
                               submissions_root=submissions)
    with sharding.setup_lock(workdir, settings.db_url):  # other shards may be starting too
        migrate_legacy_state(workdir)  # DIR/state/ of an older grader -> DIR/.grader/
        CourseLayout(workdir).nbgrader_config().write_text(
            config_file_text(workdir, sqlalchemy_url(db_url), timeout), encoding="utf-8")
        for aid in assignments:
            if not sharding.already_registered(roots.solutions, workdir, settings.db_url, aid):
                replace_tree(roots.solutions / aid, CourseLayout(workdir).source(aid))
                register_assignment(settings, aid)
                write_template(settings, aid)
            elif lstat_kind(nbgrader_steps.template_path(workdir, aid)) != "file":
                write_template(settings, aid)
    progress = progress or Progress()
    progress.start(sum(shard.owns(s, a) for s in students for a in assignments))

    outcomes: dict[tuple[str, str], Outcome] = {}
    todo = []
    hand_grades: dict[tuple[str, str], list[manual.HandGrade]] = {}
    staging_flags: dict[tuple[str, str], list[str]] = {}
    for student_id in students:
        for aid in assignments:
            if not shard.owns(student_id, aid):
                continue
            forced = force and (force_students is None or student_id in force_students)
            done = None if forced else resume.previous_outcome(settings, submissions,
                                                                student_id, aid)
            if done is not None:
                outcomes[student_id, aid] = Outcome(**done)
                log(_describe(outcomes[student_id, aid]) + " (from an earlier run)")
                progress.update(outcomes[student_id, aid], resumed=True)
                continue
            resume.forget(workdir, student_id, aid)  # graded again: no earlier result stands
            # before the new hand-in replaces the old copy: which hand grades still apply
            hand_grades[student_id, aid] = manual.unchanged_hand_grades(
                settings.db_url, workdir, submissions, student_id, aid)
            staged_flags, problem = stage(submissions, workdir, student_id, aid)
            if flag_names.NOT_GRADABLE & set(staged_flags):
                outcomes[student_id, aid] = Outcome(student_id, aid, staged_flags,
                                                    problem=problem)
                log(_describe(outcomes[student_id, aid]))
                progress.update(outcomes[student_id, aid])
            else:  # graded; an unsafe-file flag (links left out of the copy) stays with it
                if problem:
                    log(f"warning: {student_id}/{aid}: not copied{problem}")
                todo.append((student_id, aid))
                staging_flags[student_id, aid] = staged_flags
    with sharding.setup_lock(workdir, settings.db_url):  # record_zero adds students too
        register_students(settings, [s for s, _ in todo] + [s for s, _ in outcomes])
    for outcome in run_jobs(settings, todo, jobs, log, on_outcome=progress.update):
        key = outcome.student_id, outcome.assignment_id
        outcome.flags = sorted({*outcome.flags, *staging_flags.get(key, [])})
        outcomes[key] = outcome
    progress.close()

    for (student_id, aid), outcome in sorted(outcomes.items()):
        feedback = CourseLayout(workdir).feedback_page(student_id, aid)
        if not outcome.autograded:
            record_zero(settings, student_id, aid)
            write_placeholder_feedback(feedback, student_id, aid, outcome.problem)
        elif (student_id, aid) in hand_grades:  # graded in this run
            manual.keep_hand_grades(settings.db_url, student_id, aid,
                                    hand_grades[student_id, aid])
    if similarity and not shard.sharded:  # DIR/similarity.csv and flags; never a score
        flag_similar(workdir, assignments, roots.solutions, outcomes, log)
    record = [{"student_id": s, "assignment_id": a, "flags": o.flags,
               "autograded": o.autograded} for (s, a), o in sorted(outcomes.items())]
    refused = refused_rows(settings.db_url, refused_students, assignments, log)
    if shard.sharded:  # other shards write the same CSVs: `grader export` joins them
        sharding.save_shard_record(workdir, settings.db_url, shard, record,
                                   refused_as_json(refused))
        return [outcomes[k] for k in sorted(outcomes)]
    write_reports(settings.db_url, workdir,
                  [(s, a, o.flags) for (s, a), o in outcomes.items()], extra=refused)
    save_run_record(workdir, settings.db_url, record, refused)
    write_review_list(workdir, [(s, a, ";".join(o.flags)) for (s, a), o in outcomes.items()
                                if o.flags]
                      + [(g.student_id, g.assignment, ";".join(g.flags)) for g in refused])
    return [outcomes[k] for k in sorted(outcomes)]
