"""Where a command's CPU time goes, by kind of process.

    python tests/cpu_by_process.py [--json FILE] -- make test

Runs the command and samples /proc five times a second: every process seen (the command's own
and any other started meanwhile: kernels in sandboxes, reparented daemons, Chromium) is put in
a kind by its command line (read again at its first samples: a forked child shows its
parent's until it execs), and its CPU time (user + system) is counted from when it was first
seen, so processes already running at the start count only what they used during the run. A
process that lives less than a sample's interval, or its last fraction of one, is missed.
With --tree only the command's own process tree counts (its descendants, and orphans of theirs,
which the tool adopts as their subreaper): other work on a shared machine is left out.
Prints a table (CPU seconds, processes, kind) and, with --json FILE, writes it there too.
Linux only. The README's breakdown of `make test` was measured with it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from collections import Counter

# kind of process -> substrings of its command line, tried in this order
KINDS = [
    ("book or exercise kernel", ["ipykernel"]),
    ("grading kernel", ["import grader.inside.tamper"]),
    ("verdict subject", ["grader_wire"]),
    ("nbgrader steps", ["grader.bridge.nbgrader_steps"]),
    ("spawned worker", ["multiprocessing.spawn", "spawn_main"]),
    ("grader command", ["-m grader"]),
    ("chromium", ["chrom"]),
    ("pip", ["-m pip"]),
    ("pytest", ["pytest", "exec(eval(sys.stdin.readline()))"]),  # xdist workers: execnet
    ("postgres", ["postgres"]),
    ("bubblewrap", ["bwrap"]),
]
INTERVAL = 0.2  # seconds between samples
RESIGHTINGS = 5  # a process's kind is read again at its first samples (after an exec)


def kind_of(cmdline: str) -> str:
    for kind, needles in KINDS:
        if any(n in cmdline for n in needles):
            return kind
    return "other: " + (cmdline.split(" ", 1)[0].rsplit("/", 1)[-1] or "(kernel thread)")


def _read(pid: str) -> tuple[str, int, str] | None:
    """(start time, CPU ticks, parent pid) of a process; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19], int(fields[11]) + int(fields[12]), fields[1]  # starttime, utime + stime


PR_SET_CHILD_SUBREAPER = 36


def _adopt_orphans(adopt: bool = True) -> None:
    """Make this process the subreaper of its descendants (adopt=False: no longer): one whose
    parent ends is re-parented here, not to init, so it stays in the command's tree (a kernel
    whose launcher exited)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(adopt), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def measure(argv: list[str], tree: bool = False) -> tuple[int, dict[str, float], dict[str, int]]:
    """Run argv; (its exit status, CPU seconds by kind, processes by kind). tree: count only
    argv's process and its descendants."""
    hz = os.sysconf("SC_CLK_TCK")
    # (pid, start) -> [kind, ticks at first sight, last ticks, sightings]
    seen: dict[tuple[str, str], list] = {}
    # with tree: this process (the subreaper: orphans' parent) and the pids of the command's tree
    me = str(os.getpid())
    mine: set[str] = {me}
    before: set[str] = set()  # processes that ran before the command (not its orphans)

    def in_tree(processes: dict[str, tuple[str, int, str]]) -> set[str]:
        grown = True
        while grown:  # a child may be listed before its parent: until nothing is added
            grown = False
            for pid, (_, _, ppid) in processes.items():
                # a child of this process is the command or an orphan adopted since it started
                if pid not in mine and ppid in mine and not (ppid == me and pid in before):
                    mine.add(pid)
                    grown = True
        return mine

    def sample(first: bool = False) -> None:
        processes = {pid: read for pid in filter(str.isdigit, os.listdir("/proc"))
                     if int(pid) != os.getpid() and (read := _read(pid)) is not None}
        if tree and first:
            before.update(processes)
        if tree and not first:
            mine.intersection_update({*processes, me})  # a pid reused later is new
            keep = in_tree(processes)
            processes = {pid: read for pid, read in processes.items() if pid in keep}
        for pid, (start, ticks, _) in processes.items():
            entry = seen.get((pid, start))
            if entry is None:  # already running before the command: count from now
                seen[(pid, start)] = [kind_of(_cmdline(pid)), ticks if first else 0, ticks, 1]
                continue
            entry[2] = ticks
            if entry[3] < RESIGHTINGS:  # forked, perhaps not yet exec'd: the parent's command
                entry[0], entry[3] = kind_of(_cmdline(pid)), entry[3] + 1

    sample(first=True)
    if tree:
        _adopt_orphans()
    try:
        proc = subprocess.Popen(argv)
        while proc.poll() is None:
            time.sleep(INTERVAL)
            sample()
    finally:
        if tree:
            _adopt_orphans(False)  # a test's process does not stay everyone's subreaper
    cpu, count = Counter(), Counter()
    for kind, base, last, _ in seen.values():
        if last > base:
            cpu[kind] += (last - base) / hz
            count[kind] += 1
    return proc.returncode, dict(cpu), dict(count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--json", metavar="FILE", help="also write the table there")
    parser.add_argument("--tree", action="store_true",
                        help="count only the command's own process tree, not other work")
    parser.add_argument("command", nargs="+", help="the command to run (after --)")
    args = parser.parse_args(argv)
    status, cpu, count = measure(args.command, tree=args.tree)
    for kind, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"{seconds:9.1f} s  {count[kind]:6d}  {kind}")
    print(f"{sum(cpu.values()):9.1f} s  in all; the command exited with {status}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"status": status, "cpu_seconds": cpu, "processes": count}, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
