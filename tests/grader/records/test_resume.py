"""grader.records.resume without a kernel: what changes a submission's fingerprint (and so makes
autograde grade it again) and what does not, and when a recorded outcome is reused."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
from toy_gradebook import AID, add_submission, make_course

from grader.bridge.course import LIBRARY_PACKAGE
from grader.commands.autograde import GradingSettings, Outcome
from grader.isolation.limits import Limits
from grader.records import resume


@pytest.fixture
def setup(tmp_path: Path):
    """(settings, submissions folder) with ann's hand-in and the assignment's source."""
    work, submissions = tmp_path / "work", tmp_path / "submissions"
    url = make_course(work)
    for student in ("ann", "bo"):
        folder = submissions / student / AID
        folder.mkdir(parents=True)
        (folder / f"{AID}.ipynb").write_text(f'{{"cells": [], "who": "{student}"}}')
    settings = GradingSettings(work, url, timeout=30, sandbox=False,
                               submissions_root=submissions)
    return settings, submissions


def _fp(settings, submissions, student="ann"):
    return resume.fingerprint(settings, submissions, student, AID)


def test_same_inputs_same_fingerprint(setup):
    settings, submissions = setup
    assert _fp(settings, submissions) == _fp(settings, submissions)
    assert _fp(settings, submissions) != _fp(settings, submissions, "bo")


@pytest.mark.parametrize("change", [
    lambda s, sub: (sub / "ann" / AID / f"{AID}.ipynb").write_text('{"cells": [1]}'),
    lambda s, sub: (sub / "ann" / AID / "data.csv").write_text("1,2\n"),  # a file added
    lambda s, sub: (sub / "ann" / AID / f"{AID}.ipynb").rename(sub / "ann" / AID / "x.ipynb"),
    lambda s, sub: (s.course_root / "source" / AID / f"{AID}.ipynb").write_text("{}"),
])
def test_files_that_change_the_fingerprint(setup, change):
    settings, submissions = setup
    before = _fp(settings, submissions)
    change(settings, submissions)
    assert _fp(settings, submissions) != before


@pytest.mark.parametrize("field, value", [
    ("timeout", 31), ("sandbox", True), ("db_url", "sqlite:///other.db"),
    ("kernel_manager_class", "x.Y"), ("limits", Limits(memory_bytes=3 * 2**30)),
])
def test_settings_that_change_the_fingerprint(setup, field, value):
    settings, submissions = setup
    other = dataclasses.replace(settings, **{field: value})
    assert _fp(other, submissions) != _fp(settings, submissions)


def test_what_does_not_change_the_fingerprint(setup, tmp_path: Path):
    settings, submissions = setup
    before = _fp(settings, submissions)
    # another student's hand-in, another assignment's source, file times
    (submissions / "bo" / AID / f"{AID}.ipynb").write_text('{"cells": [2]}')
    other_source = settings.course_root / "source" / "other" / "other.ipynb"
    other_source.parent.mkdir(parents=True)
    other_source.write_text("{}")
    os.utime(submissions / "ann" / AID / f"{AID}.ipynb", (1, 1))
    assert _fp(settings, submissions) == before
    # the whole submissions folder moved elsewhere, same files
    moved = tmp_path / "moved"
    submissions.rename(moved)
    assert _fp(settings, moved) == before


def test_link_targets_are_not_read(setup, tmp_path: Path):
    settings, submissions = setup
    target = tmp_path / "outside.txt"
    target.write_text("one")
    (submissions / "ann" / AID / "link").symlink_to(target)
    before = _fp(settings, submissions)
    target.write_text("two")  # the link's target is not the student's file
    assert _fp(settings, submissions) == before


def _done(settings, submissions, student="ann"):
    outcome = Outcome(student, AID, ["timeout"], autograded=True, seconds=1.5)
    resume.mark_done(settings, student, AID, outcome)
    feedback = settings.course_root / "feedback" / student / AID / f"{AID}.html"
    feedback.parent.mkdir(parents=True, exist_ok=True)
    feedback.write_text("<html></html>")
    return feedback


def test_recorded_outcome_is_reused(setup):
    settings, submissions = setup
    add_submission(settings.db_url, "ann", {"test_b": 2.0, "test_a": 0.0})
    _done(settings, submissions)
    assert resume.previous_outcome(settings, submissions, "ann", AID) == {
        "student_id": "ann", "assignment_id": AID, "flags": ["timeout"], "autograded": True,
        "seconds": 1.5, "problem": ""}
    assert Outcome(**resume.previous_outcome(settings, submissions, "ann", AID)).flags == [
        "timeout"]


def test_outcome_not_reused_after_a_new_hand_in(setup):
    settings, submissions = setup
    add_submission(settings.db_url, "ann", {"test_b": 2.0, "test_a": 0.0})
    _done(settings, submissions)
    (submissions / "ann" / AID / f"{AID}.ipynb").write_text('{"cells": ["new"]}')
    assert resume.previous_outcome(settings, submissions, "ann", AID) is None


def test_outcome_not_reused_when_results_are_gone(setup):
    settings, submissions = setup
    feedback = _done(settings, submissions)
    assert resume.previous_outcome(settings, submissions, "ann", AID) is None  # no gradebook row
    add_submission(settings.db_url, "ann", {"test_b": 2.0, "test_a": 0.0})
    assert resume.previous_outcome(settings, submissions, "ann", AID) is not None
    feedback.unlink()
    assert resume.previous_outcome(settings, submissions, "ann", AID) is None


def test_no_record_without_a_submissions_root(setup):
    settings, submissions = setup
    settings = dataclasses.replace(settings, submissions_root=None)
    resume.mark_done(settings, "ann", AID, Outcome("ann", AID))
    assert not resume.state_path(settings.course_root, "ann", AID).exists()


def test_the_graders_code_is_in_the_fingerprint(setup, monkeypatch):
    settings, submissions = setup
    before = _fp(settings, submissions)
    monkeypatch.setattr(resume, "grader_code_version", lambda: "a fixed hidden check")
    assert _fp(settings, submissions) != before


def test_code_version_covers_the_hidden_checks(tmp_path: Path):
    """A copy of the grader package: an edit of grader/checks/ (or of any module) changes the
    version; __pycache__ and non-Python files do not."""
    package = tmp_path / "grader"
    shutil.copytree(resume.package_dir("grader"), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    library = resume.package_dir(LIBRARY_PACKAGE)
    assert (package / "checks").is_dir() and library is not None
    version = resume.code_version.__wrapped__  # not cached: the files change in between
    before = version(package, library)
    assert version(package, library) == before
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (package / "notes.txt").write_text("not code")
    assert version(package, library) == before
    check = next((package / "checks").glob("ex*.py"))
    check.write_text(check.read_text() + "\n# fixed\n")
    assert version(package, library) != before
    assert resume.grader_code_version() == resume.code_version(
        resume.package_dir("grader"), library)


def test_a_grading_error_is_never_recorded(setup):
    settings, submissions = setup
    add_submission(settings.db_url, "ann", {"test_b": 2.0, "test_a": 0.0})
    _done(settings, submissions)
    failed = Outcome("ann", AID, ["grading-error"], autograded=True)
    resume.forget(settings.course_root, "ann", AID)  # autograde: before grading again
    resume.mark_done(settings, "ann", AID, failed)
    assert not resume.state_path(settings.course_root, "ann", AID).exists()
    assert resume.previous_outcome(settings, submissions, "ann", AID) is None


def test_a_recorded_grading_error_is_not_reused(setup):
    """A record that holds one anyway (written by an older grader) is not final either."""
    settings, submissions = setup
    add_submission(settings.db_url, "ann", {"test_b": 2.0, "test_a": 0.0})
    _done(settings, submissions)
    path = resume.state_path(settings.course_root, "ann", AID)
    record = json.loads(path.read_text())
    record["outcome"]["flags"] = ["grading-error"]
    path.write_text(json.dumps(record))
    assert resume.previous_outcome(settings, submissions, "ann", AID) is None


def test_records_live_under_the_graders_folder(setup):
    settings, _ = setup
    path = resume.state_path(settings.course_root, "setup.lock", AID)
    assert path == settings.course_root / ".grader" / "state" / "setup.lock" / f"{AID}.json"
