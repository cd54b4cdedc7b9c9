"""grader.records.progress: the bar (only on a terminal, never with --quiet) and the end summary."""

from __future__ import annotations

import io
import sys

from grader.commands.autograde import Outcome
from grader.records.progress import Progress, summary


def _outcomes() -> list[Outcome]:
    return [Outcome("ann", "ex1", [], True, 3.0), Outcome("bo", "ex1", ["timeout"], True, 9.5),
            Outcome("cy", "ex1", ["invalid-notebook"], False, 0.0),
            Outcome("di", "ex1", ["grading-error"], False, 4.0),
            Outcome("ed", "ex1", ["timeout", "kernel-died"], True, 7.0)]


def test_summary_counts_flags_and_slowest() -> None:
    lines = summary(_outcomes(), seconds=30.0, resumed={("ann", "ex1")}, slowest=2)
    assert lines[0] == "graded 4/5 submission(s) in 30.0 s (1 kept from an earlier run)"
    assert lines[1].startswith("throughput: 8.0 submissions per minute")  # 4 graded now / 30 s
    assert lines[2] == "flagged: timeout 2, grading-error 1, invalid-notebook 1, kernel-died 1"
    assert lines[3] == "slowest: bo/ex1 9.5 s, ed/ex1 7.0 s"
    assert len(summary(_outcomes() * 2000, 60.0)) <= 5  # one screen for 10,000 submissions


def test_summary_without_flags() -> None:
    lines = summary([Outcome("ann", "ex1", [], True, 1.0)], 2.0)
    assert "flagged: none" in lines


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not Progress.for_terminal().bar_enabled


def test_bar_on_a_terminal_counts_and_quiet_turns_it_off(monkeypatch) -> None:
    err, out = io.StringIO(), io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)
    assert not Progress.for_terminal(quiet=True).bar_enabled
    progress = Progress.for_terminal()
    progress.start(5)
    for outcome in _outcomes():
        progress.update(outcome)
        progress.write(f"graded {outcome.student_id}")
    progress.close()
    assert progress.flagged == 4 and progress.failed == 1  # only grading-error failed
    assert "5/5" in err.getvalue() and "flagged=4" in err.getvalue()
    assert "failed=1" in err.getvalue()
    assert "graded ed" in out.getvalue()  # log lines go to stdout, above the bar


def test_quiet_keeps_warnings_and_errors() -> None:
    lines = []
    progress = Progress(quiet=True, log=lines.append)
    for line in ("graded ann/ex1 in 3.0 s", "warning: ignoring x", "error: y"):
        progress.write(line)
    assert lines == ["warning: ignoring x", "error: y"]
