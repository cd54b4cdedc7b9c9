"""One submission on its way through `autograde`: the value each grading step takes and returns.

`grader.commands.autograde.AUTOGRADE_STEPS` is the life of a submission, a named list of steps
as nbgrader's converters are (`autograde_preprocessors`); each is `step(submission) ->
submission`. A Submission carries who and what (student, assignment), where (its paths, spelled
by `CourseLayout`), under which settings (the run's `GradingSettings`: limits, sandbox, the
gradebook's URL) and what the steps found so far (nbgrader's log and executed notebook, the
trusted verdicts, the scores to record, flags, review notes, the feedback's result).

It lives in the bridge room, next to `CourseLayout`, not in commands: every room that handles
one submission reads it — commands.autograde runs the steps, judging.verdict judges it,
bridge.nbgrader_steps stages and sends it to nbgrader's child — and commands is the top room
that nothing imports, while bridge may be imported by judging, records and commands alike. It
is data: it opens no gradebook and starts no process (the steps do), and it imports nothing of
the grader but the layout and the limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.bridge.course import CourseLayout
from grader.isolation.limits import Limits


@dataclass(eq=False)
class Submission:
    """SUBMISSIONS/<student_id>/<assignment_id>/ being graded in DIR = settings.course_root."""

    student_id: str
    assignment_id: str
    # the run's GradingSettings (grader.commands.autograde): course_root, db_url, sandbox,
    # run_limits(), child_settings(), config() -- read through the properties below
    settings: Any
    # --- what the steps find, in the order they find it
    log: str = ""                         # nbgrader's log, then the grader's own lines
    executed: Any = None                  # the executed notebook (NotebookNode) nbgrader's
                                          # child returned; None: it did not run to the end
    verdicts: list | None = None          # grader.judging.verdict.Verdicts, in cell order
    verdict_error: BaseException | None = None  # no trusted verdict could be reached
    kernel_scores: dict[str, float] = field(default_factory=dict)  # what nbgrader's run gave
    scores: dict[str, float] = field(default_factory=dict)  # the autograded scores recorded
    flags: list[str] = field(default_factory=list)  # sorted, de-duplicated
    notes: list[str] = field(default_factory=list)  # review lines (DIR/review/<s>/<id>.txt)
    problem: str = ""                     # why it was not autograded (placeholder feedback)
    started: float = 0.0                  # time.monotonic() at the first step
    seconds: float = 0.0
    # --- what is running for it between steps (not data; closed by the last step)
    running: dict[str, Any] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ settings
    @property
    def course_root(self) -> Path:
        return Path(self.settings.course_root)

    @property
    def db_url(self) -> str:
        return self.settings.db_url

    @property
    def sandbox(self) -> bool:
        return self.settings.sandbox

    @property
    def limits(self) -> Limits:
        """The limits it is graded under (the run's, with the cell timeout set)."""
        return self.settings.run_limits()

    # ------------------------------------------------------------------ paths
    @property
    def layout(self) -> CourseLayout:
        return CourseLayout(self.course_root)

    @property
    def source_notebook(self) -> Path:
        return self.layout.source_notebook(self.assignment_id)

    @property
    def released_notebook(self) -> Path:
        return self.layout.released_notebook(self.assignment_id)

    @property
    def submitted(self) -> Path:
        return self.layout.submitted(self.student_id, self.assignment_id)

    @property
    def submitted_notebook(self) -> Path:
        return self.layout.submitted_notebook(self.student_id, self.assignment_id)

    @property
    def autograded_notebook(self) -> Path:
        return self.layout.autograded_notebook(self.student_id, self.assignment_id)

    @property
    def feedback_page(self) -> Path:
        return self.layout.feedback_page(self.student_id, self.assignment_id)

    @property
    def log_file(self) -> Path:
        return self.layout.log(self.student_id, self.assignment_id)

    @property
    def review_note(self) -> Path:
        return self.layout.review_note(self.student_id, self.assignment_id)

    # ------------------------------------------------------------------ results
    @property
    def autograded(self) -> bool:
        """nbgrader ran the notebook to the end and its gradebook rows are recorded."""
        return self.executed is not None

    def flag(self, *names: str) -> None:
        self.flags = sorted({*self.flags, *names})
