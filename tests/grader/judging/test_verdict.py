"""grader/judging/verdict.py on its own, without a subject process: which cells of a notebook
the subject runs and which test cells are judged (notebook_parts), a test cell's parts in order
(run_test_cell), the failure message a student reads, the kernel's score held to the visible
tests (CellVerdict, kernel_differences), the subjects' ends as flags (Verdicts), what is sent
into the sandbox as text (boot_source, helpers_source), and the kernel's private channel
(KernelChannel, KernelProcess). Whole verdicts through a subject: test_verdict_wire.py,
test_verdict_ex3.py, test_verdict_ex5.py."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import types

import nbformat
import pytest
from conftest import REPO

from grader.judging import proxy, verdict
from grader.judging.verdict import (
    CellVerdict,
    KernelChannel,
    Verdicts,
    failure_message,
    kernel_differences,
    run_test_cell,
)
from grader.records import flags as flag_names

GRADER = REPO / "grader"
CELL = ("assert f(1) == 1, 'visible'\n"
        "### BEGIN HIDDEN TESTS\n"
        "assert f(2) == 3, 'hidden'\n"
        "### END HIDDEN TESTS\n")


# --------------------------------------------------------------------------- the notebook's parts


def _cell(source: str, **nbgrader):
    cell = nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "solution": False, "grade": False,
                                     "locked": False, **nbgrader}
    return cell


def _source_notebook():
    return nbformat.v4.new_notebook(cells=[
        _cell("import math", grade_id="setup", locked=True),
        _cell("def f(x):\n    raise NotImplementedError\n\n\nclass Net:\n    def inner(self):\n"
              "        pass\n", grade_id="answer_f", solution=True),
        _cell("assert f(1) == 1", grade_id="test_f", grade=True, locked=True, points=2),
        _cell("scratch = 1"),  # no nbgrader metadata: not the course's
        nbformat.v4.new_markdown_cell("Why?", metadata={"nbgrader": {
            "schema_version": 3, "solution": True, "grade": True, "locked": False,
            "grade_id": "why", "points": 1}}),
        _cell("def g(:\n", grade_id="answer_g", solution=True),  # names of no syntax
    ])


def test_the_subject_runs_the_given_cells_and_the_students_answers_only():
    source = _source_notebook()
    submitted = _source_notebook()
    submitted.cells[0].source = "import os  # a given cell changed by the student"
    submitted.cells[1].source = "def f(x):\n    return x\n"
    submitted.cells[2].source = "pass  # a test cell changed by the student"
    del submitted.cells[5]  # answer_g: not handed in
    submitted.cells.append(_cell("def f(x):\n    return 0\n", grade_id="extra", solution=True))
    cells, names, tests = verdict.notebook_parts(source, submitted)
    assert cells == [("setup", "import math"), ("answer_f", "def f(x):\n    return x\n"),
                     ("answer_g", "")]
    assert names == ["f", "Net"]  # top-level definitions of the source's answer cells
    assert tests == [("test_f", 2.0, "assert f(1) == 1")]
    assert verdict.given_cells(source) == [("setup", "import math")]


# --------------------------------------------------------------------------- a test cell


def test_a_test_cell_runs_its_parts_in_order_and_knows_the_visible_result():
    ns = {"f": lambda x: x}
    source = CELL
    error, visible = run_test_cell(source, "t", ns)
    assert str(error) == "hidden" and visible is True
    error, visible = run_test_cell(source.replace("f(1) == 1", "f(1) == 0"), "t", ns)
    assert str(error) == "visible" and visible is False
    error, visible = run_test_cell(source + "assert True\n", "t", ns)
    assert str(error) == "hidden" and visible is None  # a visible part after it never ran
    assert run_test_cell(source.replace("f(2) == 3", "f(2) == 2"), "t", ns) == (None, True)
    block = "if True:\n    assert f(1) == 1\n    ### BEGIN HIDDEN TESTS\n    assert f(2) == 3\n"
    error, visible = run_test_cell(block + "    ### END HIDDEN TESTS\n", "t", ns)
    assert isinstance(error, AssertionError) and visible is None  # one block: not told apart


def test_a_test_cell_that_does_not_compile_fails_with_its_syntax_error():
    error, visible = run_test_cell("assert f(1) ==\n", "t", {})
    assert isinstance(error, SyntaxError) and visible is None


def test_the_kernel_is_compared_with_the_visible_part():
    assert CellVerdict("t", 0.0, 2.0, "x", visible_score=2.0).kernel_should_report() == 2.0
    assert CellVerdict("t", 0.0, 2.0, "x").kernel_should_report() == 0.0  # no hidden tests
    assert CellVerdict("t", 0.0, 2.0, "x", visible_score=2.0,
                       visible_known=False).kernel_should_report() is None


def test_kernel_differences_skip_what_cannot_be_compared_and_quote_one_short_line():
    verdicts = [CellVerdict("a", 0.0, 1.0, "AssertionError: " + "w" * 1000 + "\nsecond line"),
                CellVerdict("b", 1.0, 1.0),
                CellVerdict("c", 0.0, 1.0, "x", visible_score=1.0, visible_known=False),
                CellVerdict("d", 1.0, 1.0)]
    differences = kernel_differences({"a": 1.0, "b": 0.0, "c": 0.0}, verdicts)  # d: not reported
    assert differences == [
        "a: the notebook's kernel reported 1, the grader's own run gives 0 / 1 "
        f"({('AssertionError: ' + 'w' * 1000)[:300]})",
        "b: the notebook's kernel reported 0, the grader's own run gives 1 / 1"]


# --------------------------------------------------------------------------- failure messages


def test_an_error_the_student_raised_is_named_and_cut():
    chosen = "def check_residual_mlp(residual_mlp):\n" + "leak " * 1000
    e = proxy._exception({"type": "ValueError", "message": chosen, "traceback": chosen})
    assert isinstance(e, ValueError) and len(str(e)) == proxy.MAX_STUDENT_TEXT
    e.subject_call = "residual_mlp"
    message = failure_message(e)
    assert message.startswith("residual_mlp raised ValueError: def check_residual_mlp(")
    assert "expected: no error" in message
    assert len(message) < proxy.MAX_STUDENT_TEXT + 150 and message.count("\n") == 1
    odd = proxy._exception({"type": "Custom" * 100, "message": "m"})
    assert isinstance(odd, proxy.SubjectError) and len(failure_message(odd)) < 400


def test_a_grader_error_shows_no_grader_path():
    e = FileNotFoundError(f"no file {GRADER.resolve() / 'checks' / 'ex1.py'}, or so")
    assert failure_message(e) == "FileNotFoundError: no file <grader file> or so"
    assert "NameError: name 'square' is not defined" == failure_message(
        NameError("name 'square' is not defined"))  # autograde's undefined-names reads this


def test_a_checks_long_message_is_cut_and_a_forged_subject_mark_is_not_believed():
    message = failure_message(AssertionError("observed " + "9" * 5000))
    assert len(message) == verdict.MAX_MESSAGE and message.startswith("AssertionError: observed 9")
    forged = ValueError("plain")
    forged.from_subject, forged.subject_text = True, ["not", "text"]
    assert failure_message(forged) == "ValueError: plain"


# --------------------------------------------------------------------------- the subjects' ends


def test_what_stopped_the_subjects_becomes_flags_with_a_note_each():
    verdicts = Verdicts([CellVerdict("t", 1.0, 1.0)])
    verdicts.note_stopped({"timeout", "protocol", "disk", "stopped"})
    assert verdicts == [CellVerdict("t", 1.0, 1.0)]
    assert verdicts.flags == [flag_names.DISK_LIMIT, flag_names.TAMPER_SUSPECTED,
                              flag_names.TIMEOUT]
    assert len(verdicts.notes) == 3 and verdicts.notes[2] == "your code's process ran out of time"
    quiet = Verdicts()
    quiet.note_stopped(set())
    assert quiet.flags == [] and quiet.notes == []


# --------------------------------------------------------------------------- sent as text


def test_the_subjects_boot_text_compiles_and_names_no_grader_path():
    text = verdict.boot_source()
    compile(text, "<boot>", "exec")
    assert str(GRADER.resolve()) not in text and str(GRADER) not in text
    assert "sys.modules['grader_wire']" in text and "sys.modules['grader_instruments']" in text


def test_the_library_scan_sent_to_the_subject_ignores_a_forged_report():
    helpers: dict = {"__name__": "grader_helpers"}
    exec(compile(verdict.helpers_source(), "<helpers>", "exec"), helpers)
    ns: dict = {}
    exec("def wraps(n):\n    from resnet_course import models\n    return models\n"
         "wraps.__subject_library_references__ = []\n"  # what a student could set
         "def own(n):\n    return n\n", ns)
    assert helpers["library_references"](ns["wraps"]) == ["import resnet_course"]
    assert helpers["library_references"](ns["own"]) == []


# --------------------------------------------------------------------------- the kernel's channel


def test_the_channel_takes_one_connection_of_its_user(tmp_path):
    channel = verdict.KernelChannel(tmp_path, None)
    assert oct(os.stat(channel.folder).st_mode & 0o777) == "0o711"
    assert oct(os.stat(channel.path).st_mode & 0o777) == "0o600"
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(channel.path))
    accepted = channel.accept(10)
    assert accepted is not None and accepted[1] == os.getpid()
    accepted[0].close()
    client.close()
    assert not channel.folder.exists()  # one connection: the socket is gone
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with pytest.raises(OSError):
        late.connect(str(channel.path))


def test_the_channel_stops_waiting_when_the_notebook_ended(tmp_path):
    channel = verdict.KernelChannel(tmp_path, None)
    threading.Timer(0.3, channel.notebook_ended).start()
    started = time.monotonic()
    assert channel.accept(60) is None
    assert time.monotonic() - started < 5
    channel.close()
    assert not channel.folder.exists()


def test_no_kernel_subject_when_the_notebook_ended_unconnected(tmp_path):
    channel = KernelChannel(tmp_path, None)
    channel.notebook_ended()
    started = time.monotonic()
    assert verdict.kernel_subject(channel, verdict.Limits(cell_timeout=1)) is None
    assert time.monotonic() - started < 2 and not channel.folder.exists()


@pytest.fixture
def kernel():
    """A stand-in for the kernel's process (it runs no student code) and both socket ends."""
    process = subprocess.Popen(["sleep", "60"])
    ours, theirs = socket.socketpair()
    yield process, verdict.KernelProcess(ours, process.pid), theirs
    process.kill()
    process.wait()
    theirs.close()


def test_killing_the_kernel_ends_its_process_and_hangs_up(kernel):
    process, end, theirs = kernel
    end.kill("no answer within 1 s", "timeout")
    end.kill("a later reason", "protocol")  # the first reason stands
    assert process.wait(timeout=5) == -9
    assert end.dead == "no answer within 1 s" and end.stopped_for == {"timeout"}
    assert theirs.recv(1) == b""  # hung up


def test_closing_hangs_up_then_ends_a_kernel_that_lingers(kernel, monkeypatch):
    monkeypatch.setattr(verdict, "GRACE_SECONDS", 0.2)
    process, end, theirs = kernel
    end.close()
    assert end.dead == "closed" and end.stopped_for == set()
    assert theirs.recv(1) == b""
    assert process.poll() is None  # the grace period first
    assert process.wait(timeout=5) == -9


def _notebook_without_tests(path):
    nb = nbformat.v4.new_notebook(cells=[_cell("x = 1", grade_id="setup", locked=True)])
    nbformat.write(nb, path)
    return path


def test_a_notebook_without_test_cells_starts_no_subject_and_closes_the_channel(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr(verdict, "Subject", None)  # calling it would fail the test
    channel = KernelChannel(tmp_path, None)
    path = _notebook_without_tests(tmp_path / "nb.ipynb")
    verdicts = verdict.judge(path, path, kernel=channel)
    assert verdicts == [] and verdicts.flags == [] and not channel.folder.exists()


def test_the_channel_is_closed_whatever_happens(tmp_path):
    channel = KernelChannel(tmp_path, None)
    missing = types.SimpleNamespace(source_notebook=tmp_path / "none.ipynb",
                                    submitted_notebook=tmp_path / "none.ipynb",
                                    limits=verdict.Limits(), sandbox=False)
    with pytest.raises(FileNotFoundError):
        verdict.judge_submission(missing, channel)
    assert not channel.folder.exists()
