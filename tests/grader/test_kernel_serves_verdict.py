"""Issue 21 item 2: student code runs once per submission.

After the notebook has run, its kernel serves the trusted verdict (grader/inside/subject.py's Server
on the notebook's namespace) over grader.judging.verdict.KernelChannel, a Unix socket the grader
listens on; a fresh sandboxed subject starts only where the kernel cannot serve (it died). Checked
here (the channel itself: tests/grader/judging/test_verdict.py): a toy-course run grades with no
subject started at all, a helper written outside the answer cells counts, and a kernel that dies
in the notebook still gets its verdict from a fresh subject.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import copy_toy, read_csv
from test_grader_cli import _submission

from grader.bridge.course import Roots
from grader.commands import autograde as autograde_module
from grader.commands.cli import main
from grader.judging import verdict


@pytest.mark.slow
@pytest.mark.needs_sandbox
def test_the_kernel_answers_the_verdict(tmp_path, monkeypatch):
    """No subject process starts for submissions whose kernel ran the notebook; a kernel that
    died in the notebook (os._exit) is judged by a fresh subject, as before."""
    root = tmp_path / "course"
    copy_toy(root)
    assert main(["release", "--root", str(root)]) == 0
    submissions = tmp_path / "submissions"

    def put(student, nb):
        (submissions / student / "toy").mkdir(parents=True)
        nbformat.write(nb, submissions / student / "toy" / "toy.ipynb")

    put("alice", _submission(root))
    helper = _submission(root, {"double": "def double(x):\n    return helper(x)"})
    at = next(i for i, c in enumerate(helper.cells)
              if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    helper.cells.insert(at, nbformat.v4.new_code_cell("def helper(x):\n    return 2 * x"))
    put("helen", helper)
    put("henry", _submission(root, {"double": "import os\n\n\ndef double(x):\n"
                                              "    os._exit(1)"}))
    started = []
    real = verdict.Subject

    def counted(*args, **kwargs):
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(verdict, "Subject", counted)
    autograde_module.autograde(submissions, tmp_path / "work", Roots.from_root(root), jobs=1,
                               log=lambda line: None, similarity=False)
    rows = {r["student_id"]: (r["score"], r["flags"])
            for r in read_csv(tmp_path / "work" / "grades.csv")}
    assert rows["alice"] == ("3", "") and rows["helen"] == ("3", ""), rows
    assert rows["henry"] == ("2", "kernel-died"), rows
    assert len(started) == 1  # henry's only: the other kernels served their verdicts
    # the channels' folders are gone (they lie in this process's fork server's folder)
    assert not list(Path(tempfile.gettempdir()).glob(f"gsz-{os.getpid()}-*/gvk-*"))
