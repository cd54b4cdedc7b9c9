"""grader.isolation.sandbox and grader.isolation.limits: the bubblewrap command line, the
availability probe, and real sandboxed kernels (what they can see and do, the watchdog, no leftover
processes)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from conftest import REPO
from nbformat.v4 import new_code_cell, new_notebook
from submissions import pids_under
from traitlets.config import Config

from grader.bridge.nbgrader_steps import configure_execution
from grader.isolation import sandbox
from grader.isolation.limits import GIB, SCRATCH, Limits
from grader.isolation.sandbox import SandboxedExecute, SandboxSpec
from grader.records.flags import run_flags, run_report

needs_sandbox = pytest.mark.needs_sandbox


@pytest.mark.parametrize("field,value", [("cell_timeout", 0), ("memory_bytes", 1000),
                                         ("max_processes", 2), ("notebook_timeout", -5),
                                         ("open_files", 1.5), ("cell_output_bytes", True)])
def test_limits_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


def test_limits_become_prlimit_arguments():
    args = Limits(memory_bytes=2 * GIB, max_processes=100, notebook_timeout=50).rlimit_args()
    assert f"--as={2 * GIB}" in args and "--nproc=100" in args and "--core=0" in args
    assert "--cpu=160" in args  # backstop: two cores for the whole notebook, plus slack


def test_argv_isolates(tmp_path):
    spec = SandboxSpec(tmp_path / "work", tmp_path, Limits(), uid=61234)
    argv = spec.argv(["python", "-c", "pass"])
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent",
                 "--new-session", "--clearenv"):
        assert flag in argv
    binds = {argv[i + 1]: argv[i] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")}
    assert binds[str((tmp_path / "work").resolve())] == "--bind"  # a given folder: writable
    assert str(tmp_path.resolve()) in binds  # the runtime folder (sockets)
    assert SandboxSpec(None, tmp_path, Limits(), uid=None).workdir is None  # kernels: scratch
    # nothing of the grader package by default (the verdict's subject); see test_hidden_tests
    assert not [p for p in binds if Path(p).is_relative_to(REPO / "grader")]
    assert all(not Path(p).is_relative_to(REPO / "solutions") for p in binds)
    assert str(REPO) not in binds  # never the whole repository (solutions/, the gradebook)
    assert [a for a in argv if a.startswith("--reuid")] == ["--reuid=61234"]
    assert argv[-3:] == ["python", "-c", "pass"] and "prlimit" in argv


def test_environment_is_not_inherited(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_DB_PASSWORD", "hunter2")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    env = SandboxSpec(tmp_path, tmp_path, Limits(), uid=None).env()
    assert "INSTRUCTOR_DB_PASSWORD" not in env and env["PYTHONWARNINGS"] == "ignore"


def test_unavailable_without_bubblewrap(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    sandbox.sandbox_available.cache_clear()
    try:
        ok, why = sandbox.sandbox_available()
    finally:
        sandbox.sandbox_available.cache_clear()
    assert not ok and "bubblewrap" in why
    with pytest.raises(sandbox.SandboxUnavailable, match="--no-sandbox"):
        monkeypatch.setattr(sandbox, "sandbox_available", lambda: (False, why))
        sandbox.require_sandbox()


def test_run_flags():
    assert run_flags({}) == []
    assert run_flags({"cell_timeouts": 1}) == ["timeout"]
    assert run_flags({"kernel_died": True}) == ["kernel-died"]
    assert run_flags({"kernel_died": True, "watchdog": True}) == ["timeout"]
    assert run_flags({"output_truncated": True, "tamper_runtime": ["x"]}) == [
        "output-truncated", "tamper-suspected"]


def _execute(cells: list[str], workdir: Path, sandboxed: bool = True,
             **limits) -> tuple[list, dict]:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    c = Config()
    configure_execution(c, Limits(**limits), sandbox=sandboxed)
    workdir.mkdir(parents=True, exist_ok=True)
    ep = SandboxedExecute(config=c)
    nb, _ = ep.preprocess(nb, {"metadata": {"path": str(workdir)}})
    return nb.cells, run_report(nb)


def _text(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.outputs)


@pytest.mark.slow
@needs_sandbox
def test_what_a_sandboxed_kernel_sees(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCTOR_TOKEN", "secret-token")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    probe = (
        "import os, resource, socket\nfacts = {\n"
        " 'uid': os.getuid(), 'pid': os.getpid(), 'cwd': os.getcwd(),\n"
        f" 'solutions': os.path.exists({str(REPO / 'solutions')!r}),\n"
        f" 'repo_files': os.path.exists({str(REPO / 'Makefile')!r}),\n"
        " 'grader': sorted(os.listdir(os.path.dirname(__import__('grader').__file__))),\n"
        f" 'checks': os.path.exists({str(REPO / 'grader' / 'checks')!r}),\n"
        " 'home': os.listdir(os.path.expanduser('~')),\n"
        " 'token': os.environ.get('INSTRUCTOR_TOKEN'),\n"
        " 'nbgrader_env': sorted(k for k in os.environ if k.startswith('NBGRADER')),\n"
        " 'sizes': [os.statvfs(d).f_blocks * os.statvfs(d).f_frsize\n"
        "           for d in ('/tmp', '/dev/shm', os.path.expanduser('~'))],\n"
        " 'as_limit': resource.getrlimit(resource.RLIMIT_AS)[0],\n"
        " 'scratch': [os.access(d, os.W_OK)\n"
        "             for d in ('/tmp', '/dev/shm', os.path.expanduser('~'))],\n"
        " 'rfc3987': __import__('rfc3987_syntax').__name__,\n"
        "}\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    facts['net'] = True\nexcept OSError:\n    facts['net'] = False\n"
        "open('written.txt', 'w').write('ok')\nprint(repr(facts))\n")
    cells, report = _execute([probe], tmp_path / "work", memory_bytes=3 * GIB,
                             tmpfs_bytes=64 * 1024**2, disk_bytes=96 * 1024**2)
    facts = ast.literal_eval(_text(cells[0]).strip())
    assert facts["uid"] != 0 or os.geteuid() != 0
    assert facts["pid"] < 10  # its own PID namespace
    assert facts["cwd"] == SCRATCH  # a scratch tmpfs, not nbgrader's folder
    assert facts["solutions"] is False and facts["repo_files"] is False
    # of the grader, only what the kernel's boot runs (its hidden tests stay with the grader)
    top = sorted({name.split("/")[0] for name in sandbox.KERNEL_GRADER_FILES})
    assert facts["grader"] == top and facts["checks"] is False
    assert facts["token"] is None and facts["net"] is False and facts["nbgrader_env"] == []
    assert facts["sizes"] == [64 * 1024**2, 64 * 1024**2, 96 * 1024**2]  # sized tmpfs
    assert facts["as_limit"] == 3 * GIB
    assert facts["scratch"] == [True, True, True]  # private tmpfs: /tmp, /dev/shm, home
    assert facts["rfc3987"] == "rfc3987_syntax"  # what the grader skips, the student may import
    assert list((tmp_path / "work").iterdir()) == []  # nothing of the scratch comes back
    assert report["sandboxed"] is True and report["tamper_runtime"] == []
    assert report["disk_full"] == []


@pytest.mark.slow
@needs_sandbox
def test_watchdog_kills_the_notebook_and_its_children(tmp_path):
    cells, report = _execute(
        ["import subprocess\np = subprocess.Popen(['sleep', '500'])\nprint(p.pid)",
         "import time\ntime.sleep(500)", "print('never runs')"],
        tmp_path / "work", cell_timeout=60, notebook_timeout=12)
    assert report["watchdog"] is True and report["kernel_died"] is True
    assert run_flags(report) == ["timeout"]
    assert cells[2].outputs[0]["ename"] == "KernelDied"
    assert pids_under(tmp_path) == []


@pytest.mark.slow
def test_unsandboxed_kernel_keeps_watchdog_and_probe(tmp_path):
    """--no-sandbox: a plain kernel, still with the run report and the integrity probe."""
    cells, report = _execute(["import torch\ntorch.equal = lambda a, b: True", "print(1 + 1)"],
                             tmp_path / "work", sandboxed=False)
    assert report["sandboxed"] is False
    assert _text(cells[1]).strip() == "2"
    assert any("torch.equal" in r for r in report["tamper_runtime"])
