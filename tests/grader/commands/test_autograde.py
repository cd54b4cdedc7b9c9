"""grader.commands.autograde without a kernel: the named list of steps, what each step does
with a Submission (nbgrader's child, the verdicts and the review note faked), the settings a
worker gets, the outcome it returns, and the bookkeeping before any grading (the students'
folders, --student, staging). A whole grading run of the toy class is in
tests/grader/test_grader_cli.py; resume and --force in test_regrade.py."""

from __future__ import annotations

import dataclasses
import json
import pickle
from concurrent.futures import Future
from pathlib import Path

import nbformat
import pytest
from conftest import copy_toy

import grader.commands.autograde as autograde_module
from grader.bridge import nbgrader_steps
from grader.bridge.course import Roots
from grader.bridge.submission import Submission
from grader.commands.autograde import (
    AUTOGRADE_STEPS,
    MAX_VERDICT_CHARS,
    VERDICT_KEY,
    GradingSettings,
    Outcome,
    _check_force_students,
    _child_seconds,
    _describe,
    _final_score,
    _flag_undefined_names,
    find_students,
    grade_one,
    sqlalchemy_url,
    stage,
    undefined_names,
    with_verdict_messages,
)
from grader.isolation.limits import Limits
from grader.records import flags as flag_names
from grader.records import resume

AID = "toy"


def _settings(root: Path, **changes) -> GradingSettings:
    return GradingSettings(root, "sqlite:///g.db", sandbox=False, **changes)


def _submission(root: Path, **fields) -> Submission:
    sub = Submission("ann", AID, _settings(root))
    for name, value in fields.items():
        setattr(sub, name, value)
    return sub


def _verdicts(*cells):
    from grader.judging.verdict import Verdicts

    return Verdicts(cells)


def _cell(*args, **kwargs):
    from grader.judging.verdict import CellVerdict

    return CellVerdict(*args, **kwargs)


def _test_cell(grade_id: str, source: str = "assert True", **metadata):
    return nbformat.v4.new_code_cell(source, metadata={
        "nbgrader": {"grade": True, "grade_id": grade_id, "points": 1, "solution": False,
                     "locked": True, "schema_version": 3}, **metadata})


# ----------------------------------------------------------------------------- the steps


def test_the_steps_are_named_in_one_list():
    """The life of one submission is AUTOGRADE_STEPS, in this order: the verdict waits before
    the notebook runs, recording comes before the notebook is stored and flagged, feedback
    after the flags, and the child is closed before the log."""
    assert [step.__name__ for step in AUTOGRADE_STEPS] == [
        "open_child", "start_verdict", "run_notebook", "await_verdicts", "record",
        "store_notebook", "flag", "feedback", "close_child", "write_log", "mark_done"]
    assert all(getattr(autograde_module, step.__name__) is step for step in AUTOGRADE_STEPS)


class FakeChild:
    def __init__(self):
        self.closed = 0

    def close(self):
        self.closed += 1


def test_grade_one_runs_the_steps_in_order_into_an_outcome(tmp_path, monkeypatch):
    seen = []

    def step(name, **fields):
        def run(sub):
            seen.append(name)
            for key, value in fields.items():
                setattr(sub, key, value)
            return sub
        run.__name__ = name
        return run

    monkeypatch.setattr(autograde_module, "AUTOGRADE_STEPS", [
        step("a", executed={"cells": []}), step("b", flags=["timeout"], seconds=2.5),
        step("c", problem="p")])
    outcome = grade_one(_settings(tmp_path), "ann", AID)
    assert seen == ["a", "b", "c"]
    assert outcome == Outcome("ann", AID, ["timeout"], autograded=True, seconds=2.5,
                              problem="p")


def test_grade_one_closes_the_child_whatever_a_step_raised(tmp_path, monkeypatch):
    child = FakeChild()

    def opens(sub):
        sub.running["child"] = child
        return sub

    def fails(sub):
        raise RuntimeError("the step failed")

    monkeypatch.setattr(autograde_module, "AUTOGRADE_STEPS", [opens, fails])
    with pytest.raises(RuntimeError, match="the step failed"):
        grade_one(_settings(tmp_path), "ann", AID)
    assert child.closed == 1


class FakeChannel:
    path = Path("/run/verdict.sock")

    def __init__(self):
        self.ended = 0

    def notebook_ended(self):
        self.ended += 1


@pytest.mark.parametrize("answer, executed, log", [
    (RuntimeError("nbgrader's child process gave no answer"), False,
     "nbgrader's child process failed: nbgrader's child process gave no answer\n"),
    ({"ok": False, "log": "[Autograde] ERROR\n", "notebook": None}, False, "[Autograde] ERROR\n"),
    ({"ok": True, "log": "done\n", "notebook": nbformat.writes(nbformat.v4.new_notebook())},
     True, "done\n"),
])
def test_run_notebook_keeps_the_log_and_ends_the_channel(answer, executed, log, tmp_path,
                                                         monkeypatch):
    calls = []

    def fake(child, sub, verdict_socket):
        calls.append(verdict_socket)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(nbgrader_steps, "autograde", fake)
    channel = FakeChannel()
    sub = _submission(tmp_path, running={"child": FakeChild(), "channel": channel})
    autograde_module.run_notebook(sub)
    assert calls == ["/run/verdict.sock"] and channel.ended == 1
    assert (sub.log, sub.autograded) == (log, executed)


def test_run_notebook_without_a_channel_sends_no_socket(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(nbgrader_steps, "autograde",
                        lambda child, sub, socket: calls.append(socket) or {"ok": False, "log": ""})
    autograde_module.run_notebook(_submission(tmp_path, running={"child": FakeChild()}))
    assert calls == [""]


def test_await_verdicts_keeps_the_verdicts_or_why_there_are_none(tmp_path):
    done, failed = Future(), Future()
    done.set_result(["v"])
    failed.set_exception(ConnectionError("the kernel hung up"))
    sub = autograde_module.await_verdicts(_submission(tmp_path, running={"verdicts": done}))
    assert (sub.verdicts, sub.verdict_error, sub.running) == (["v"], None, {})
    sub = autograde_module.await_verdicts(_submission(tmp_path, running={"verdicts": failed}))
    assert sub.verdicts is None and isinstance(sub.verdict_error, ConnectionError)


def test_the_final_score_is_the_verdicts_or_0_without_one(tmp_path):
    sub = _submission(tmp_path, verdicts=_verdicts(_cell("t1", 0.5, 2.0, "wrong")))
    final = _final_score(sub)
    assert (final("t1", 2.0), final("t2", 1.0)) == (0.5, 1.0)  # no verdict: the kernel's
    sub.verdict_error = TimeoutError()
    assert _final_score(sub)("t1", 2.0) == 0.0


def test_the_stored_notebook_carries_each_failed_verdicts_message(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[_test_cell("t1"), _test_cell("t2", grader_verdict=
                                                                      "forged by the child")])
    sub = _submission(tmp_path, executed=nb, verdicts=_verdicts(
        _cell("t1", 0.0, 1.0, "AssertionError: " + "x" * 3000), _cell("t2", 1.0, 1.0)))
    autograde_module.store_notebook(sub)
    stored = nbformat.read(sub.autograded_notebook, as_version=4)
    message = stored.cells[0].metadata[VERDICT_KEY]
    assert message == ("AssertionError: " + "x" * 3000)[:MAX_VERDICT_CHARS]
    assert VERDICT_KEY not in stored.cells[1].metadata  # what the child sent is dropped
    assert nb.cells[1].metadata[VERDICT_KEY] == "forged by the child"  # a copy is stored


@pytest.fixture
def review_writes(monkeypatch) -> list:
    """Each call of grader.records.flags.write_review (the real one still writes)."""
    calls, real = [], flag_names.write_review

    def spy(course_root, student_id, assignment_id, notes):
        calls.append((Path(course_root), student_id, assignment_id, list(notes)))
        real(course_root, student_id, assignment_id, notes)

    monkeypatch.setattr(flag_names, "write_review", spy)
    return calls


def test_the_flag_step_writes_one_review_note_with_every_reason(tmp_path, monkeypatch,
                                                                 review_writes):
    """Tamper reasons, how the verdict's subject ended, where the kernel's scores differ from
    the verdicts', names the verdict found undefined: one note, written once, in that order."""
    def tamper(ctx):
        ctx.notes.append("answer: line 3: rebinds torch.allclose\n")
        return [flag_names.TAMPER_SUSPECTED]

    monkeypatch.setattr(autograde_module, "collect_flags", tamper)
    source = tmp_path / "source" / AID
    source.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "def square(x):\n    return x * x")]), source / f"{AID}.ipynb")
    verdicts = _verdicts(_cell("t1", 0.0, 2.0, "NameError: name 'helper' is not defined"),
                         _cell("t2", 1.0, 1.0))
    verdicts.note_stopped({"timeout"})
    sub = _submission(tmp_path, executed=nbformat.v4.new_notebook(), verdicts=verdicts,
                      kernel_scores={"t1": 2.0, "t2": 1.0})
    autograde_module.flag(sub)
    assert sub.flags == ["tamper-suspected", "timeout", "undefined-names", "verdict-mismatch"]
    ((root, student, assignment, notes),) = review_writes
    assert (root, student, assignment) == (tmp_path, "ann", AID)
    assert notes[:3] == [
        "answer: line 3: rebinds torch.allclose\n",
        "verdict: your code's process ran out of time\n",
        "verdict: t1: the notebook's kernel reported 2, the grader's own run gives 0 / 2 "
        "(NameError: name 'helper' is not defined)\n"]
    assert len(notes) == 4 and notes[3].startswith("undefined: the grader's run had no helper (")
    assert sub.review_note.read_text() == "".join(notes)


def test_the_flag_step_replaces_an_earlier_note_when_nbgrader_failed(tmp_path, review_writes):
    sub = _submission(tmp_path, log="nbclient.exceptions.DeadKernelError: Kernel died\n")
    sub.review_note.parent.mkdir(parents=True)
    sub.review_note.write_text("an earlier grading's note\n")
    autograde_module.flag(sub)  # the real checks: nbgrader did not run it to the end
    assert (sub.flags, sub.problem) == (["kernel-died"],
                                        "the kernel died while running your notebook")
    assert review_writes == [(tmp_path, "ann", AID, [])] and not sub.review_note.exists()
    sub = autograde_module.flag(_submission(tmp_path, log="Traceback: KeyError\n"))
    assert (sub.flags, sub.problem) == (["grading-error"], "the grader failed on this notebook")


def test_no_verdict_is_a_grading_error(tmp_path, monkeypatch, review_writes):
    monkeypatch.setattr(autograde_module, "collect_flags", lambda ctx: [])
    sub = _submission(tmp_path, executed=nbformat.v4.new_notebook(),
                      verdict_error=ConnectionError("hung up"))
    autograde_module.flag(sub)
    assert sub.flags == ["grading-error"]
    assert sub.log == "\ntrusted verdict failed: ConnectionError('hung up')\n"
    assert review_writes == [(tmp_path, "ann", AID, [])]


def test_the_review_note_is_written_even_when_a_check_fails(tmp_path, monkeypatch,
                                                            review_writes):
    def broken(ctx):
        ctx.notes.append("answer: line 1: reads the grader's files\n")
        raise OSError("unreadable")

    monkeypatch.setattr(autograde_module, "collect_flags", broken)
    with pytest.raises(OSError, match="unreadable"):
        autograde_module.flag(_submission(tmp_path))
    assert review_writes == [(tmp_path, "ann", AID, [])]  # the earlier note does not survive


def test_undefined_names_are_flagged_with_a_review_line(tmp_path):
    judged = [_cell("a", 0.0, 1.0, "NameError: name 'helper' is not defined"),
              _cell("b", 0.0, 1.0, "SubjectError: NameError: name '_util' is not defined"),
              _cell("c", 1.0, 1.0, ""),
              _cell("d", 0.0, 1.0, "AssertionError: observed 1, expected 2")]
    assert undefined_names(judged) == ["_util", "helper"]
    submission = Submission("s", AID, _settings(tmp_path))
    assert _flag_undefined_names(submission, judged[2:]) == []
    # a name the instructor's notebook defines is missing because the answer crashed: no flag
    source = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def double(x):\n"
                                                                       "    pass")])
    (tmp_path / "source" / AID).mkdir(parents=True)
    nbformat.write(source, tmp_path / "source" / AID / f"{AID}.ipynb")
    crashed = [_cell("e", 0.0, 1.0, "NameError: name 'double' is not defined")]
    assert _flag_undefined_names(submission, crashed) == [] and submission.notes == []
    assert _flag_undefined_names(submission, judged) == ["undefined-names"]
    (note,) = submission.notes  # written by the flag step, with every other reason
    assert note.startswith("undefined: the grader's run had no _util, helper (")


def test_verdict_messages_become_escaped_text_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("assert double(2) == 4")
    cell.metadata[VERDICT_KEY] = ("AssertionError: observed <script>alert(1)</script>\x1b[31m "
                                  + "x" * 5000)
    nb.cells = [cell, nbformat.v4.new_code_cell("pass")]
    with_verdict_messages(nb)
    assert nb.cells[1].outputs == []
    (out,) = nb.cells[0].outputs
    assert out.output_type == "stream" and "Checked by the grader" in out.text
    assert "\x1b" not in out.text and len(out.text) < MAX_VERDICT_CHARS + 200
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(nb)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_a_missing_name_gets_the_helper_hint():
    cell = nbformat.v4.new_code_cell("t()", metadata={
        VERDICT_KEY: "NameError: name 'helper' is not defined"})
    (out,) = with_verdict_messages(nbformat.v4.new_notebook(cells=[cell])).cells[0].outputs
    assert "define helpers inside an answer cell" in out.text


@pytest.mark.parametrize("flags, done", [([], True), (["timeout"], True),
                                         (["grading-error"], False)])
def test_mark_done_keeps_every_result_but_a_grading_error(flags, done, tmp_path, monkeypatch):
    marked = []
    monkeypatch.setattr(resume, "mark_done", lambda settings, s, a, o: marked.append(o))
    autograde_module.mark_done(_submission(tmp_path, flags=flags, seconds=1.5))
    assert marked == ([Outcome("ann", AID, flags, False, 1.5)] if done else [])


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("flags, graded", [
    ([], True), (["timeout", "kernel-died"], True), (["missing-notebook"], True),
    (["grading-error"], False), (["timeout", "grading-error"], False)])
def test_outcome_graded_unless_grading_error(flags, graded):
    assert Outcome("ann", AID, flags).graded is graded


def test_outcome_lines():
    assert _describe(Outcome("ann", AID, ["kernel-died", "timeout"], True, 12.34)) == \
        "graded ann/toy in 12.3 s [kernel-died;timeout]"
    assert _describe(Outcome("bo", AID)) == "graded bo/toy in 0.0 s"


def test_grading_settings_reach_the_child_and_the_workers(tmp_path):
    limits = Limits(notebook_timeout=60, memory_bytes=2 * 1024**3)
    settings = _settings(tmp_path, timeout=7, limits=limits, kernel_manager_class="x.KM")
    assert settings.run_limits() == dataclasses.replace(limits, cell_timeout=7)
    child = json.loads(json.dumps(settings.child_settings()))  # JSON to nbgrader's child
    assert child == {"timeout": 7, "kernel_manager_class": "x.KM", "sandbox": False,
                     "limits": dict(limits.__dict__)}
    assert Limits(**child["limits"]) == limits
    assert pickle.loads(pickle.dumps(settings)) == settings  # to --jobs N worker processes
    coursedir = settings.coursedir(AID, "ann")
    assert (coursedir.assignment_id, coursedir.student_id) == (AID, "ann")
    assert Path(coursedir.root) == tmp_path


def test_the_child_may_take_the_notebook_twice_and_a_start():
    assert _child_seconds(Limits(notebook_timeout=100)) == 200 + nbgrader_steps.STARTUP_SECONDS


def test_postgresql_urls_name_the_pinned_driver(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # psycopg 3 not installed
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("sqlite:///g.db") == "sqlite:///g.db"
    assert sqlalchemy_url(None) is None


# ----------------------------------------------------------------------------- before grading


def test_find_students_refuses_bad_folder_names(tmp_path):
    for name in ("ann", "bo", ".git", "bad name"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.txt").write_text("stray")
    (tmp_path / "link").symlink_to(tmp_path / "ann")
    good, refused = find_students(tmp_path)
    assert good == ["ann", "bo"]
    assert refused == {"bad name": "characters other than letters, digits and . _ @ + - "
                                   "(or too long)",
                       "link": "a link, not a folder"}


def test_student_needs_force_and_a_folder():
    _check_force_students(False, None, ["ann"], {})
    _check_force_students(True, ["ann"], ["ann"], {})
    with pytest.raises(ValueError) as err:
        _check_force_students(False, ["ann"], ["ann"], {})
    assert str(err.value) == "--student only chooses whom --force regrades; add --force"
    with pytest.raises(ValueError) as err:
        _check_force_students(True, ["zed", "bad name"], ["ann", "bo"], {"bad name": "spaces"})
    assert str(err.value) == ("--student: nothing to regrade for 'bad name': folder refused "
                              "(spaces); zed: no such folder (students in SUBMISSIONS: ann, bo)")


@pytest.mark.parametrize("files, flags, problem", [
    ({}, ["missing-notebook"], "no toy/toy.ipynb found"),
    ({"toy.ipynb": "{not json"}, ["invalid-notebook"], "toy.ipynb is not a valid notebook ("),
    ({"toy.ipynb": None}, [], ""),
])
def test_stage_copies_the_hand_in_and_says_what_is_wrong(files, flags, problem, tmp_path):
    hand_in = tmp_path / "subs" / "ann" / AID
    hand_in.mkdir(parents=True)
    for name, text in files.items():
        (hand_in / name).write_text(text or nbformat.writes(nbformat.v4.new_notebook()))
    old = tmp_path / "work" / "autograded" / "ann" / AID
    old.mkdir(parents=True)  # an earlier run's result
    got_flags, got_problem = stage(tmp_path / "subs", tmp_path / "work", "ann", AID)
    assert got_flags == flags and got_problem.startswith(problem)
    assert bool(problem) == bool(got_problem)
    assert not old.exists()
    assert sorted(p.name for p in (tmp_path / "work" / "submitted" / "ann" / AID).iterdir()) \
        == sorted(files)


def test_stage_leaves_out_a_link_and_flags_it(tmp_path):
    hand_in = tmp_path / "subs" / "ann" / AID
    hand_in.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), hand_in / f"{AID}.ipynb")
    (hand_in / "data.csv").symlink_to("/etc/passwd")
    flags, problem = stage(tmp_path / "subs", tmp_path / "work", "ann", AID)
    assert flags == ["unsafe-file"] and problem.startswith(" (refused: data.csv")
    assert not (tmp_path / "work" / "submitted" / "ann" / AID / "data.csv").exists()


def test_students_exist_before_parallel_workers_start(tmp_path: Path, monkeypatch) -> None:
    """With --jobs N, two workers may grade one new student's two assignments at once, and
    nbgrader creates a missing student by find-then-insert: both would insert it (UNIQUE
    constraint failed: student.id, a grading-error). autograde adds every student first."""
    from nbgrader.api import Gradebook

    seen = {}

    def fake_run_jobs(settings, todo, jobs, log, **_):
        with Gradebook(settings.db_url) as gb:
            seen["students"] = sorted(s.id for s in gb.students)
        seen["todo"] = sorted({s for s, _ in todo})
        return []

    monkeypatch.setattr(autograde_module, "run_jobs", fake_run_jobs)
    root = copy_toy(tmp_path / "course")
    submissions = tmp_path / "submissions"
    for student in ("zoe", "yann"):
        folder = submissions / student / AID
        folder.mkdir(parents=True)
        nbformat.write(nbformat.read(root / "solutions" / AID / f"{AID}.ipynb", as_version=4),
                       folder / f"{AID}.ipynb")
    autograde_module.autograde(submissions, tmp_path / "work", Roots.from_root(root),
                               jobs=2, sandbox=False, similarity=False, log=lambda line: None)
    assert seen["todo"] == ["yann", "zoe"]
    assert seen["students"] == ["yann", "zoe"]
