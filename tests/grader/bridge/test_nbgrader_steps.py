"""grader.bridge.nbgrader_steps without starting nbgrader's child: the parent's checks of what a
child answers (size, type, data only), the child's request loop (serve) over a socket pair, the
children's environment, GivenGrades (the feedback's scores as data) and the stale-folder
cleanup. The child as a leased user, and a root run, are in tests/grader/test_unprivileged.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest

import grader
from grader.bridge import nbgrader_steps
from grader.bridge.course import CourseLayout
from grader.bridge.nbgrader_steps import (
    MAX_LOG_CHARS,
    GivenGrades,
    StepsChild,
    _coursedir,
    child_env,
    serve,
    template_path,
)
from grader.bridge.submission import Submission
from grader.isolation.limits import Limits
from grader.isolation.sandbox import FORWARDED_ENV


def test_template_path_is_the_layouts(tmp_path):
    assert template_path(tmp_path, "toy") == CourseLayout(tmp_path).template("toy")


def test_children_get_no_secrets_and_the_graders_packages(tmp_path, monkeypatch):
    for name in FORWARDED_ENV:  # `make` sets MPLBACKEND: only the variables set here
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("PYTHONPATH", "/extra")
    env = child_env(tmp_path)
    assert sorted(env) == ["HOME", "LANG", "PATH", "PYTHONPATH", "TMPDIR", "TZ"]
    assert env["HOME"] == str(tmp_path) and env["LANG"] == "C.UTF-8" and env["TZ"] == "UTC"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # alembic
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(Path(grader.__file__).resolve().parents[1]), "/extra"]


# ----------------------------------------------------------------------------- the parent's side


class FakeChild:
    """What autograde() and feedback() use of a StepsChild: stage, settings, request."""

    def __init__(self, answer: dict):
        self.answer, self.settings = answer, {"timeout": 5}
        self.staged, self.requests = [], []

    def stage(self, submission):
        self.staged.append(submission.student_id)

    def request(self, request, limit):
        self.requests.append((request, limit))
        return self.answer


class Settings:
    """The run's settings as a Submission reads them (grader.commands.autograde's
    GradingSettings, without importing the commands room)."""

    def __init__(self, root: Path):
        self.course_root, self.db_url = root, "sqlite:///g.db"

    def run_limits(self) -> Limits:
        return Limits(notebook_bytes=100_000)


def _sub(tmp_path) -> Submission:
    return Submission("ann", "toy", Settings(tmp_path))


def test_autograde_stages_then_asks_with_a_bounded_answer(tmp_path):
    child = FakeChild({"ok": True, "log": "done", "notebook": "{}", "seconds": 1.5})
    assert nbgrader_steps.autograde(child, _sub(tmp_path), "/run/v.sock") == {
        "ok": True, "log": "done", "notebook": "{}", "seconds": 1.5}
    assert child.staged == ["ann"]
    ((request, limit),) = child.requests
    assert request == {"op": "autograde", "student_id": "ann", "assignment_id": "toy",
                       "settings": {"timeout": 5, "verdict_socket": "/run/v.sock"}}
    assert limit == 4 * 100_000 + 2 * MAX_LOG_CHARS + 10_000


@pytest.mark.parametrize("answer, ok", [
    ({"ok": "yes", "log": "", "notebook": "{}"}, False),  # only True is ok
    ({"log": "no notebook"}, False),
])
def test_autograde_trusts_only_a_true_ok(answer, ok, tmp_path):
    assert nbgrader_steps.autograde(FakeChild(answer), _sub(tmp_path))["ok"] is ok


def test_an_answer_that_is_not_text_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="sent a notebook that is not text"):
        nbgrader_steps.autograde(FakeChild({"ok": True, "notebook": {"cells": []}}),
                                 _sub(tmp_path))
    with pytest.raises(RuntimeError, match="sent a page that is not text"):
        nbgrader_steps.feedback(FakeChild({"ok": True, "html": ["<p>"]}), _sub(tmp_path),
                                "{}", {})


def test_feedback_sends_the_notebook_and_grades_as_data(tmp_path):
    child = FakeChild({"ok": True, "log": "", "html": None})
    grades = {"cells": {}, "score": 1, "max_score": 2, "late_penalty": 0}
    assert nbgrader_steps.feedback(child, _sub(tmp_path), "{}", grades) == {
        "ok": False, "log": "", "html": None}  # no page: not ok, whatever the child said
    ((request, limit),) = child.requests
    assert request == {"op": "feedback", "student_id": "ann", "assignment_id": "toy",
                       "settings": {"timeout": 5}, "notebook": "{}", "grades": grades}
    assert limit == 2 * nbgrader_steps.MAX_HTML_BYTES + 2 * MAX_LOG_CHARS


def _talking_child(reply: bytes | None) -> StepsChild:
    """A StepsChild whose socket's other end answers `reply` once (None: hangs up)."""
    child = StepsChild.__new__(StepsChild)
    child.sock, theirs = socket.socketpair()
    child._answers = child.sock.makefile("rb")
    child.timeout, child.pid = 10, None

    def answer():
        theirs.makefile("rb").readline()
        if reply is not None:
            theirs.sendall(reply)
        theirs.close()

    threading.Thread(target=answer, daemon=True).start()
    return child


@pytest.mark.parametrize("reply, why", [
    (b'{"log": "' + b"x" * 200 + b'"}\n', "answered more than the limit"),
    (None, "gave no answer"),
    (b'{"log": "cut off', "gave no answer"),
    (b'["a", "list"]\n', "answered something else than data"),
    (b'{"log": 42}\n', "answered something else than data"),
])
def test_request_refuses_what_is_not_a_bounded_dict_of_data(reply, why):
    child = _talking_child(reply)
    with pytest.raises(RuntimeError) as err:
        child.request({"op": "identity"}, limit=100)
    assert str(err.value) == f"nbgrader's child process {why}"
    child.sock.close()


def test_request_returns_the_childs_answer():
    child = _talking_child(b'{"ok": true, "log": "fine"}\n')
    assert child.request({"op": "identity"}, limit=100) == {"ok": True, "log": "fine"}
    child.sock.close()


# ----------------------------------------------------------------------------- the child's side


def _serve(requests: list) -> list[dict]:
    """serve() on one end of a socket pair; each request sent as a line, each answer read."""
    ours, theirs = socket.socketpair()
    server = threading.Thread(target=serve, args=(theirs,), daemon=True)
    server.start()
    lines = ours.makefile("rb")
    answers = []
    for request in requests:
        ours.sendall((request if isinstance(request, str) else json.dumps(request)).encode()
                     + b"\n")
        answers.append(json.loads(lines.readline()))
    ours.shutdown(socket.SHUT_RDWR)
    server.join(5)
    assert not server.is_alive()  # the loop ends when the parent closes
    return answers


def test_serve_answers_each_request_with_data(monkeypatch):
    monkeypatch.setitem(nbgrader_steps.OPS, "chatty",
                        lambda request: {"ok": True, "log": "a" + "b" * MAX_LOG_CHARS})
    identity, unknown, broken, chatty = _serve([
        {"op": "identity", "paths": ["/", "/no/such/path"]}, {"op": "format_disk"}, "{not json",
        {"op": "chatty"}])
    assert (identity["ok"], identity["uid"], identity["cwd"]) == (True, os.getuid(),
                                                                 os.getcwd())
    assert identity["sees"] == {"/": True, "/no/such/path": False}
    assert isinstance(identity["seconds"], float)
    assert unknown["ok"] is False and "KeyError: 'format_disk'" in unknown["log"]
    assert broken["ok"] is False and "JSONDecodeError" in broken["log"]
    assert chatty["log"] == "b" * MAX_LOG_CHARS  # the tail: errors are at the end


@pytest.mark.parametrize("student, assignment", [("*", "toy"), ("ann", "../toy"),
                                                 ("ann", "")])
def test_the_child_refuses_a_glob_or_a_path_as_a_name(student, assignment):
    from traitlets.config import Config

    with pytest.raises(ValueError) as err:
        _coursedir(Config(), student, assignment)
    assert str(err.value) == f"refused name {student if student == '*' else assignment!r}"


def _graded_notebook():
    def cell(kind, grade_id, **flags):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        return make("x", metadata={"nbgrader": {"grade_id": grade_id, "grade": False,
                                                "solution": False, "task": False,
                                                "locked": False, "schema_version": 3,
                                                **flags}})

    return nbformat.v4.new_notebook(cells=[
        cell("code", "answer", solution=True), cell("code", "test", grade=True, points=2),
        cell("markdown", "explain", solution=True, grade=True, points=1),
        nbformat.v4.new_code_cell("print('given')")])


def test_given_grades_fill_in_the_scores_and_comments():
    grades = {"cells": {"answer": {"comment": "tidy"},
                        "test": {"score": 1.5, "max_score": 2},
                        "explain": {"score": 0.5, "max_score": 1, "comment": "short"}},
              "score": 2.0, "max_score": 3.0, "late_penalty": 0.5}
    nb, resources = GivenGrades(grades=grades).preprocess(_graded_notebook(), {"nbgrader": {}})
    assert resources["nbgrader"] == {"score": 1.5, "max_score": 3.0, "late_penalty": 0.5}
    answer, test, explain, given = (cell.metadata.get("nbgrader", {}) for cell in nb.cells)
    assert answer["comment"] == "tidy" and "score" not in answer
    assert (test["score"], test["points"]) == (1.5, 2) and "comment" not in test
    assert (explain["score"], explain["points"], explain["comment"]) == (0.5, 1, "short")
    assert given == {}


# ----------------------------------------------------------------------------- leftovers


def test_stale_fork_server_folders_are_removed():
    dead = _dead_pid()
    stale = Path(tempfile.mkdtemp(prefix=f"gsz-{dead}-"))
    (stale / "work").mkdir()
    live = Path(tempfile.mkdtemp(prefix=f"gsz-{os.getpid()}-"))
    try:
        nbgrader_steps.remove_stale_folders()
        assert not stale.exists() and live.exists()
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
