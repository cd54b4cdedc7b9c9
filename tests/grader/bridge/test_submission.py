"""grader.bridge.submission: the value each autograde step takes and returns."""

from __future__ import annotations

from pathlib import Path

from grader.bridge.course import CourseLayout
from grader.bridge.submission import Submission
from grader.commands.autograde import GradingSettings
from grader.isolation.limits import Limits


def _submission(root: Path, **settings) -> Submission:
    return Submission("ada", "ex1", GradingSettings(root, "sqlite:///g.db", **settings))


def test_paths_are_the_layouts(tmp_path):
    """Every path of a submission is the one CourseLayout spells (no path built by hand)."""
    sub, layout = _submission(tmp_path), CourseLayout(tmp_path)
    assert sub.course_root == tmp_path and sub.layout.root == layout.root
    assert sub.source_notebook == layout.source_notebook("ex1")
    assert sub.released_notebook == layout.released_notebook("ex1")
    assert sub.submitted == layout.submitted("ada", "ex1")
    assert sub.submitted_notebook == layout.submitted_notebook("ada", "ex1")
    assert sub.autograded_notebook == layout.autograded_notebook("ada", "ex1")
    assert sub.feedback_page == layout.feedback_page("ada", "ex1")
    assert sub.log_file == layout.log("ada", "ex1")
    assert sub.review_note == layout.review_note("ada", "ex1")
    assert "ada" in sub.submitted_notebook.parts and sub.submitted_notebook.name == "ex1.ipynb"


def test_settings_are_read_through_the_runs(tmp_path):
    sub = _submission(tmp_path, sandbox=False, limits=Limits(notebook_timeout=77))
    assert sub.db_url == "sqlite:///g.db" and sub.sandbox is False
    assert sub.limits.notebook_timeout == 77
    assert sub.limits == sub.settings.run_limits()


def test_flags_stay_sorted_and_unique():
    sub = Submission("ada", "ex1", settings=None)
    sub.flag("timeout")
    sub.flag("disk-limit", "timeout")
    sub.flag()
    assert sub.flags == ["disk-limit", "timeout"]


def test_autograded_means_nbgrader_returned_an_executed_notebook():
    sub = Submission("ada", "ex1", settings=None)
    assert not sub.autograded
    sub.executed = {"cells": []}
    assert sub.autograded


def test_results_are_per_submission():
    """Mutable fields are fresh for each submission (no list shared between two students)."""
    a, b = Submission("a", "ex1", None), Submission("b", "ex1", None)
    a.flags.append("x"), a.notes.append("y"), a.scores.update(t=1.0), a.running.update(c=1)
    assert (b.flags, b.notes, b.scores, b.running) == ([], [], {}, {})
