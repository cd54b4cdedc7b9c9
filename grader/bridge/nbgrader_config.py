"""nbgrader settings for this course, in one place.

Used two ways:
* from Python: `build_config(course_root, ...)` returns the traitlets Config that every grader
  command passes to nbgrader's converters;
* from an ordinary nbgrader config file: `autograde` writes `DIR/nbgrader_config.py`, which calls
  `apply_grading_settings`, so formgrader (`cd DIR && jupyter lab`, hand grading) sees the same
  settings (`config_file_text`), and `refuse_nbgrader_grading`: in DIR, nbgrader's own
  autograde and generate_feedback (the commands, and formgrader's Autograde and Generate
  Feedback buttons) refuse with a message naming the grader's command. Run by nbgrader, they
  would execute student code outside the grader's sandbox and score it without its trusted
  verdicts, or rewrite a feedback page without them. `nbgrader export` writes
  nbgrader_grades.csv there, leaving the grader's grades.csv alone. The grader's own steps
  build their Config in Python (build_config) and never read that file.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets.config import Config

# Seconds one cell may run before it is interrupted and scored 0 (flag `timeout`).
DEFAULT_TIMEOUT = 60

# nbgrader zeroes a test cell that wrote anything to stderr. Test cells signal failure by
# raising, so stderr there (warnings from correct code, a stray print to sys.stderr) is noise:
# IgnorePattern drops every stderr output whose text matches (this pattern matches all text).
STDERR_PATTERN = r"(?s).*"

# Environment of the grading kernel: warnings silenced at the source as well, no GUI backend.
KERNEL_ENV = {"PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}


def build_config(course_root: str | os.PathLike, db_url: str | None = None,
                 timeout: int = DEFAULT_TIMEOUT,
                 kernel_manager_class: str | None = None) -> Config:
    """The Config for nbgrader's converters working in the course directory `course_root`.

    `kernel_manager_class` ("package.module.Class") swaps how kernels are launched (a sandbox);
    None keeps nbgrader's default AsyncKernelManager.
    """
    if timeout is None or int(timeout) < 1:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    c = Config()
    c.CourseDirectory.root = str(Path(course_root).resolve())
    if db_url:
        c.CourseDirectory.db_url = db_url
    apply_grading_settings(c, int(timeout))
    if kernel_manager_class:
        c.Execute.kernel_manager_class = kernel_manager_class
    return c


def apply_grading_settings(c: Config, timeout: int = DEFAULT_TIMEOUT) -> None:
    """Settings shared by the Python API and the config-file use of this module."""
    # Execute.timeout wins over ExecutePreprocessor.timeout; interrupt, score 0, go on.
    c.Execute.timeout = timeout
    c.Execute.interrupt_on_timeout = True
    # A student who deleted a test cell still gets it run (and graded) from the source.
    c.OverwriteCells.add_missing_cells = True
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = STDERR_PATTERN
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
    # Pages (feedback, formgrader) clean HTML in markdown and outputs once more at render
    # time; the stored notebook is already sanitised (grader.integrity.sanitize).
    c.HTMLExporter.sanitize_html = True
    # nbgrader's own default course_id is "", but Gradebook() without one writes to
    # "default_course"; PostgreSQL enforces the assignment -> course foreign key, so agree.
    c.CourseDirectory.course_id = "default_course"


# What each refused nbgrader step says, and the grader command that does the job instead.
REFUSED_STEPS = {
    "Autograde": ("nbgrader autograde would run student code outside the grader's sandbox and "
                  "score it without the grader's trusted verdicts",
                  "python -m grader autograde SUBMISSIONS --workdir {root} "
                  "[--force [--student ID]]"),
    "GenerateFeedback": ("nbgrader generate_feedback would rewrite the feedback pages without "
                         "the grader's verdicts (the \"Checked by the grader\" lines)",
                         "python -m grader export --workdir {root}"),
}


def refusal_message(step: str, root: str | os.PathLike) -> str:
    why, command = REFUSED_STEPS[step]
    return (f"refused in this course directory: {why}. Nothing was changed. Use "
            f"`{command.format(root=root)}` instead (formgrader's manual grading works as "
            f"usual; run the export after hand grading).")


def _refusing_exporter():
    """An nbconvert Exporter class whose construction refuses. nbgrader's converters build
    their exporter in start(), after listing the notebooks and before writing, removing (the
    --force step) or executing anything; the message goes to the converter's log (the command's
    output, formgrader's error box) and an NbGraderException ends the step."""
    from nbconvert.exporters import Exporter
    from nbgrader.converters import GenerateFeedback
    from nbgrader.converters.base import NbGraderException

    class RefusedStep(Exporter):
        def __init__(self, config=None, **kw):
            parent = kw.get("parent")
            step = "GenerateFeedback" if isinstance(parent, GenerateFeedback) else "Autograde"
            root = getattr(getattr(parent, "coursedir", None), "root", "DIR")
            message = refusal_message(step, root)
            if parent is not None:
                parent.log.error(message)
            raise NbGraderException(message)

    return RefusedStep


# Where `nbgrader export` writes its CSV in DIR (its default, grades.csv, is the grader's file).
NBGRADER_EXPORT_FILE = "nbgrader_grades.csv"


def refuse_nbgrader_grading(c: Config) -> None:
    """Make nbgrader's Autograde and GenerateFeedback converters refuse (see the module doc),
    and keep `nbgrader export` off the grader's grades.csv."""
    refused = _refusing_exporter()
    for step in REFUSED_STEPS:
        c[step].exporter_class = refused
    c.CsvExportPlugin.to = NBGRADER_EXPORT_FILE


def config_file_text(course_root: str | os.PathLike, db_url: str | None,
                     timeout: int = DEFAULT_TIMEOUT) -> str:
    """Text of an nbgrader_config.py for `course_root` with these settings (for formgrader)."""
    lines = [
        "# Written by `python -m grader autograde`; read by formgrader (`jupyter lab` here)",
        "# and nbgrader's commands. Grade with the grader, not with nbgrader's autograde or",
        "# generate_feedback, which refuse here",
        "# (grader.bridge.nbgrader_config.refuse_nbgrader_grading).",
        "from grader.bridge.nbgrader_config import apply_grading_settings, refuse_nbgrader_grading",
        "",
        "c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)",
        f"c.CourseDirectory.root = {str(Path(course_root).resolve())!r}",
    ]
    if db_url:
        lines.append(f"c.CourseDirectory.db_url = {db_url!r}")
    lines.append(f"apply_grading_settings(c, timeout={int(timeout)})")
    lines.append("refuse_nbgrader_grading(c)")
    return "\n".join(lines) + "\n"
