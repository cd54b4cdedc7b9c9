"""tests/cpu_by_process.py, the tool behind the README's CPU breakdown of `make test`."""

import subprocess
import sys

from cpu_by_process import kind_of, main, measure

BUSY = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"


def test_kinds_by_command_line():
    assert kind_of("/v/bin/python -m ipykernel_launcher -f k.json") == "book or exercise kernel"
    assert kind_of("bwrap --unshare-all -- python -c import grader.inside.tamper; x") \
        == "grading kernel"
    assert kind_of("python -I -c m = types.ModuleType('grader_wire')") == "verdict subject"
    assert kind_of("/usr/lib/chromium/chromium --headless") == "chromium"
    assert kind_of("/usr/bin/sleep 5") == "other: sleep"
    assert kind_of("") == "other: (kernel thread)"


def test_counts_the_cpu_of_the_command_and_its_children():
    status, cpu, count = measure([sys.executable, "-c",
                                  f"import subprocess, sys\nsubprocess.run([sys.executable, "
                                  f"'-c', {BUSY!r}])"])  # fmt: skip
    assert status == 0
    python = f"other: {sys.executable.rsplit('/', 1)[-1]}"
    assert 0.7 < cpu[python] < 6 and count[python] >= 1, cpu  # the child's 1 s, not missed


def test_the_exit_status_is_the_command_s(capsys):
    assert main(["--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert "the command exited with 3" in capsys.readouterr().out


def test_a_forked_child_is_counted_as_what_it_execs():
    # the child shows its parent's command line until it execs: its kind is read again
    # (the parent's own command line must not hold the child's kind: its marker is joined there)
    parent = ("import os, sys, time\nif os.fork() == 0:\n    time.sleep(0.5)\n"
              f"    child = '# grader' + '_wire\\n' + {BUSY!r}\n"
              "    os.execv(sys.executable, [sys.executable, '-c', child])\nos.wait()")
    assert "grader_wire" not in parent
    status, cpu, _ = measure([sys.executable, "-c", parent])
    assert status == 0
    assert 0.7 < cpu.get("verdict subject", 0) < 6, cpu


def test_tree_counts_the_command_s_descendants_and_their_orphans_only():
    # the command starts a child that starts a busy grandchild and exits at once (the grandchild
    # is orphaned), while a busy process outside the command's tree runs alongside
    orphaning = ("import subprocess, sys\n"
                 f"subprocess.Popen([sys.executable, '-c', {BUSY!r}])")
    command = ("import subprocess, sys, time\n"
               f"subprocess.run([sys.executable, '-c', {orphaning!r}])\ntime.sleep(2.5)")
    outside = subprocess.Popen([sys.executable, "-c", "# outsider\n" + BUSY.replace("1.0", "2.0")])
    try:
        status, cpu, count = measure([sys.executable, "-c", command], tree=True)
    finally:
        outside.wait()
    python = f"other: {sys.executable.rsplit('/', 1)[-1]}"
    assert status == 0
    assert 0.7 < cpu[python] < 1.8, cpu  # the orphaned grandchild's 1 s; not the outsider's 2 s
