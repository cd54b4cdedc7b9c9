"""Issue 21 item 2: student code runs once per submission.

After the notebook has run, its kernel serves the trusted verdict (grader/inside/subject.py's Server
on the notebook's namespace) over grader.judging.verdict.KernelChannel, a Unix socket the grader
listens on; a fresh sandboxed subject starts only where the kernel cannot serve (it died). Checked
here: the channel takes one connection of its user and stops waiting when the notebook's run ended;
a toy-course run grades with no subject started at all, a helper written outside the answer
cells counts, and a kernel that dies in the notebook still gets its verdict from a fresh
subject.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from conftest import copy_toy, read_csv
from test_grader_cli import _submission

from grader.bridge.course import Roots
from grader.commands import autograde as autograde_module
from grader.commands.cli import main
from grader.judging import verdict


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
