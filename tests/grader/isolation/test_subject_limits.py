"""A verdict subject that cannot stall or harm the run (issue 21, item 3).

The subject (grader/inside/subject.py: the sandboxed process that runs a student's answer cells for
the trusted verdict) is the student's to control once their code runs. Each attack here is the
correct ex1 answer with an attack appended to its last graded answer cell (plain_bn_mlp), so the
cells before it must still score, and each test asserts what the issue asks: bounded time,
bounded host disk or trusted memory, the submission's checks failing honestly (0 for the cells
the attack touched, flagged, never `grading-error`), and in one autograde run with honest
students beside them (two of them named like the grader's own files): every row in grades.csv,
every feedback page.

The attacks reach the subject's channel the way student code can: the request loop's `Server`
object, found with `gc` (in the notebook's kernel there is none: the attack does nothing there).
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import nbformat
import pytest
import torch
from submissions import (
    REPO,
    autograded_cells,
    grader_env,
    make_submission,
    read_by_student,
    read_grades_by_cell,
    solution_path,
    solved_answers,
    write_submissions,
)

from grader.inside import wire
from grader.isolation.limits import MIB, Limits
from grader.judging import verdict

slow = pytest.mark.slow

AID = "ex1_degradation"
ATTACKED = "plain_bn_mlp"  # the last graded answer cell: the attack runs at its end
FULL = sum(autograded_cells(AID).values())  # 13
UNTOUCHED = FULL - autograded_cells(AID)[f"test_{ATTACKED}"]  # what the cells before it give

SERVER = """
import gc as _gc
import threading as _threading
import time as _time


def _server_now():  # the subject's request loop, if it runs yet
    return next((o for o in _gc.get_objects() if type(o).__name__ == "Server"
                 and hasattr(o, "writer")), None)


def _on_server(attack):
    # a fresh subject runs the cells inside its loop: attack at once; the notebook's kernel
    # serves the verdict after the notebook, on a socket: when its writer is made, a thread
    # waits for the loop and attacks it
    server = _server_now()
    if server is not None:
        attack(server)
        return
    import socket as _socket

    made = _socket.socket.makefile

    def wait():
        while (server := _server_now()) is None:
            _time.sleep(0.01)
        attack(server)

    def makefile(self, mode="r", *args, **kwargs):
        if "w" in mode:
            _threading.Thread(target=wait, daemon=True).start()
        return made(self, mode, *args, **kwargs)

    _socket.socket.makefile = makefile
"""

# 601 MiB into the working folder, as issue 21 measured (ENOSPC ends it where the folder is a
# sized tmpfs; the file is kept, so the folder stays full)
FILL_DISK = '''
try:
    with open("fill", "wb") as _f:
        for _ in range(601):
            _f.write(b"x" * 2**20)
except OSError:
    pass
'''

# a progress event every half second, naming a cell the grader never sent (10**6) or the last
# cell (the retry then ran the attacked cell again: two notebook limits): each event used to
# restart the request's clock
SPAM_PROGRESS = SERVER + """


def _spam(server):
    wire = type(server).serve.__globals__["wire"]  # the loop's own wire module
    while True:
        wire.send(server.writer, {{"event": "cell", "index": {index}}})
        _time.sleep(0.5)


_on_server(_spam)
"""

# every contract function hangs when the grader calls it
HANG = """
import time as _time


def _hang(*args, **kwargs):
    while True:
        _time.sleep(1)


plain_mlp = training_error = layer_gradient_norms = plain_bn_mlp = _hang
"""

# a 63 MiB JSON header (under the old 64 MiB cap) of empty objects: ~25 bytes of Python
# objects per byte to parse
HEADER_BOMB = SERVER + '''


def _bomb(server):
    import struct
    text = b'{"errors": [], "pad": [' + b'{},' * ((63 * 2**20 - 30) // 3) + b'{}]}'
    server.writer.write(struct.pack(">Q", len(text)) + text)
    server.writer.flush()


_on_server(_bomb)
'''


def attacked(attack: str, cell: str = ATTACKED) -> nbformat.NotebookNode:
    """The correct ex1 answers, `attack` run at the end of answer cell `cell`."""
    return make_submission(AID, {cell: solved_answers(AID)[cell] + "\n" + attack})


def scores(verdicts) -> dict[str, float]:
    return {v.grade_id: v.score for v in verdicts}


def judge(tmp_path: Path, nb, limits: Limits, sandbox: bool):
    path = tmp_path / f"{AID}.ipynb"
    nbformat.write(nb, path)
    started = time.monotonic()
    verdicts = verdict.judge(solution_path(AID), path, limits, sandbox)
    return verdicts, time.monotonic() - started


class FolderSize(threading.Thread):
    """The most bytes a host folder held (sampled every 0.1 s, plus a last look)."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.peak, self._done = folder, 0, threading.Event()

    def size(self) -> int:
        total = 0
        for dirpath, _dirs, filenames in os.walk(self.folder):
            for name in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    pass
        return total

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak = max(self.peak, self.size())

    def stop(self) -> int:
        self._done.set()
        self.join()
        self.peak = max(self.peak, self.size())
        return self.peak


# --------------------------------------------------------------------------- the reply caps


def _framed(text: bytes) -> io.BytesIO:
    return io.BytesIO(struct.pack(">Q", len(text)) + text)


def _receive_reply(stream):
    return wire.receive(stream, max_header=wire.MAX_REPLY_HEADER_BYTES,
                        max_items=wire.MAX_REPLY_ITEMS, max_message=wire.MAX_REPLY_MESSAGE_BYTES)


def test_the_reply_caps_leave_room_for_the_largest_honest_reply():
    """Measured over the five solutions' verdicts (grader.inside.wire's comment): a 181 kB header
    with 31,770 JSON values, 7.1 MB in all; each cap is more than five times that."""
    assert wire.MAX_REPLY_HEADER_BYTES >= 5 * 181_000
    assert wire.MAX_REPLY_ITEMS >= 5 * 31_770
    assert wire.MAX_REPLY_MESSAGE_BYTES >= 5 * 7_100_000


def test_a_reply_header_over_the_cap_is_refused_before_it_is_read():
    stream = io.BytesIO(struct.pack(">Q", wire.MAX_REPLY_HEADER_BYTES + 1) + b"{" * 64)
    with pytest.raises(wire.WireError, match="too large"):
        _receive_reply(stream)
    assert stream.tell() == 8  # only the length was read


def test_the_worst_reply_header_under_the_caps_costs_little_memory():
    """Empty objects are the costliest JSON per byte. A header of them at the size cap is
    refused by the value count; one under both caps parses in a few MB."""
    with pytest.raises(wire.WireError, match="JSON values"):
        _receive_reply(_framed(b'{"pad": [' + b"{}," * (wire.MAX_REPLY_HEADER_BYTES // 3 - 20)
                               + b"{}]}"))
    text = b'{"pad": [' + b"{}," * (wire.MAX_REPLY_ITEMS // 2 - 10) + b"{}]}"
    assert len(text) <= wire.MAX_REPLY_HEADER_BYTES
    tracemalloc.start()
    try:
        header, _ = _receive_reply(_framed(text))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(header["pad"]) == wire.MAX_REPLY_ITEMS // 2 - 9
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB"


def test_a_blob_makes_one_tensor():
    """A header that names one blob many times would make a copy of it each time (a 64 MiB blob
    named 1000 times: 64 GB): each blob makes one tensor."""
    blobs: list[bytes] = []
    tree = wire.encode(torch.zeros(4), blobs)
    with pytest.raises(wire.WireError, match="blob 0"):
        wire.decode({"$l": [tree, tree]}, list(blobs))
    assert torch.equal(wire.decode({"$l": [tree]}, list(blobs))[0], torch.zeros(4))


# --------------------------------------------------------------------------- one attack each


@slow
@pytest.mark.needs_sandbox
def test_a_subject_that_fills_its_folder_writes_no_host_disk(tmp_path, monkeypatch):
    """Its working folder was a host folder (/tmp/gsv-*/work, 601 MiB written, no flag): now
    the sandbox's sized scratch tmpfs, so the write ends with ENOSPC inside, the verdict's
    folders on the host stay small, and the disk monitor flags `disk-limit`."""
    host = tmp_path / "host-tmp"  # where the verdict makes its folders on the host
    host.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(host))
    watch = FolderSize(host)
    watch.start()
    limits = Limits(cell_timeout=60, notebook_timeout=300, disk_bytes=64 * MIB)
    verdicts, seconds = judge(tmp_path, attacked(FILL_DISK), limits, sandbox=True)
    peak = watch.stop()
    print(f"verdict {seconds:.1f} s, host folders at most {peak / MIB:.2f} MiB, flags "
          f"{getattr(verdicts, 'flags', None)}")
    assert peak < 4 * MIB, f"{peak / MIB:.0f} MiB written to the host's disk"
    assert sum(scores(verdicts).values()) == FULL, scores(verdicts)  # no check depends on it
    assert "disk-limit" in verdicts.flags, verdicts.flags
    assert seconds < 120


def last_cell() -> int:
    """The index of the last cell the subject runs (given and answer cells, in order)."""
    nb = nbformat.read(solution_path(AID), as_version=4)
    return len(verdict.notebook_parts(nb, nb)[0]) - 1


@slow
@pytest.mark.parametrize("cell,index", [(ATTACKED, "10**6"), ("plain_mlp", "last")],
                         ids=["unknown-cell", "a-later-cell"])
def test_progress_events_extend_nothing(tmp_path, cell, index):
    """Progress events restarted the per-request clock (a subject that kept sending them never
    timed out) and the retry trusted the cell index they named: 10**6 raised IndexError
    (`grading-error`); a later cell than the attacked one made the retry run the attack again,
    for a second notebook limit. Now an event out of order breaks the protocol at once: the
    attacked cell and those after it are left out, the cells before it score, the submission
    is flagged, well inside the notebook's limit."""
    index = str(last_cell()) if index == "last" else index
    limits = Limits(cell_timeout=10, notebook_timeout=60)
    verdicts, seconds = judge(tmp_path, attacked(SPAM_PROGRESS.format(index=index), cell),
                              limits, sandbox=False)
    print(f"verdict {seconds:.1f} s, flags {getattr(verdicts, 'flags', None)}")
    assert seconds < 45, seconds
    got = scores(verdicts)
    # the answer cells before the attacked one: none before plain_mlp
    assert sum(got.values()) == (UNTOUCHED if cell == ATTACKED else 0), got
    assert "tamper-suspected" in verdicts.flags, verdicts.flags


@slow
def test_the_verdict_ends_by_the_notebooks_limit(tmp_path):
    """Functions that hang when called: each test's request is stopped, and the next test's
    fresh subject used to get a whole request's time again past the notebook's limit. The
    verdict now ends by the notebook's limit (plus closing its subject), flagged `timeout`."""
    limits = Limits(cell_timeout=12, notebook_timeout=20)
    verdicts, seconds = judge(tmp_path, attacked(HANG), limits, sandbox=False)
    print(f"verdict {seconds:.1f} s, flags {getattr(verdicts, 'flags', None)}")
    assert seconds < 20 + 7, seconds
    assert sum(scores(verdicts).values()) == 0, scores(verdicts)
    assert "timeout" in verdicts.flags, verdicts.flags


TRUSTED_PEAK = '''
import json, resource, sys, time
from pathlib import Path
from grader.inside import wire
from grader.judging import verdict
from grader.isolation.limits import Limits

source, honest, bomb = (Path(p) for p in sys.argv[1:4])
limits = Limits(cell_timeout=60, notebook_timeout=300)
verdict.judge(source, honest, limits, sandbox=False)  # the checks' own memory, once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
started = time.monotonic()
verdicts = verdict.judge(source, bomb, limits, sandbox=False)
print(json.dumps({"grew": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before,
                  "seconds": time.monotonic() - started,
                  "scores": {v.grade_id: v.score for v in verdicts},
                  "flags": list(getattr(verdicts, "flags", []))}))
'''


@slow
def test_a_huge_reply_header_costs_the_trusted_side_little(tmp_path):
    """A 63 MiB header took the grader's process 2.1 GB and 34 s to parse. Replies now have a
    header cap near the largest honest one and a count of its JSON values before parsing: the
    trusted process's peak memory grows by at most 256 MB (measured in a process of its own,
    after an honest verdict), and the attacked cell fails honestly."""
    honest, bomb = tmp_path / "honest.ipynb", tmp_path / "bomb.ipynb"
    nbformat.write(make_submission(AID), honest)
    nbformat.write(attacked(HEADER_BOMB), bomb)
    done = subprocess.run([sys.executable, "-c", TRUSTED_PEAK, str(solution_path(AID)),
                           str(honest), str(bomb)], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=grader_env())
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"trusted peak grew {result['grew'] / MIB:.0f} MiB in {result['seconds']:.1f} s")
    assert result["grew"] <= 256 * MIB, f"{result['grew'] / MIB:.0f} MiB"
    assert result["seconds"] < 60, result
    assert result["scores"][f"test_{ATTACKED}"] == 0, result
    assert sum(result["scores"].values()) == UNTOUCHED, result
    assert "tamper-suspected" in result["flags"], result


# --------------------------------------------------------------------------- one class, one run


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found = []
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text()
                      .split()]
        except OSError:
            continue
    return found


class TrustedPeak(threading.Thread):
    """The largest resident memory of the grader's trusted processes: the autograde command
    and its worker processes (its direct children that are not a sandbox's bwrap)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            pids = [self.pid] + [c for c in _children(self.pid)
                                 if not _comm(c).startswith("bwrap")]
            self.peak = max([self.peak] + [_rss(p) for p in pids])

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


NOTEBOOK_TIMEOUT = 150
SIMILARITY = {"similar-to-reference", "similar-to-student"}


@slow
@pytest.mark.needs_sandbox
def test_hostile_subjects_and_odd_names_in_one_run(tmp_path):
    """One `autograde --jobs 2` run: two honest students named like the grader's own files
    (setup.lock, last_run.json), one honest student, and the three attacks. Every submission
    is graded within the notebook's limit, none as `grading-error`; the host disk (the grader's
    temporary folders) and the trusted processes' memory stay bounded; grades.csv has every
    row and every student has a feedback page."""
    students = {"honest": make_submission(AID), "setup.lock": make_submission(AID),
                "last_run.json": make_submission(AID), "fills-disk": attacked(FILL_DISK),
                "spams-progress": attacked(SPAM_PROGRESS.format(index="10**6")),
                "header-bomb": attacked(HEADER_BOMB)}
    subs = write_submissions(tmp_path / "submissions", AID, students)
    work, host = tmp_path / "work", tmp_path / "host-tmp"
    host.mkdir()
    env = {**grader_env(), "TMPDIR": str(host)}
    disk = FolderSize(host)
    disk.start()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "autograde", str(subs), "--workdir", str(work),
         "--assignment", AID, "--jobs", "2", "--cell-timeout", "60",
         "--notebook-timeout", str(NOTEBOOK_TIMEOUT)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TrustedPeak(process.pid)
    memory.start()
    try:
        out, err = process.communicate(timeout=900)
    finally:
        process.kill()
        peak_rss, peak_disk = memory.stop(), disk.stop()
    seconds = time.monotonic() - started
    print(f"run {seconds:.0f} s, trusted peak RSS {peak_rss / MIB:.0f} MiB, host temporary "
          f"folders at most {peak_disk / MIB:.1f} MiB\n{out}")
    assert process.returncode == 0, (out[-3000:], err[-3000:])
    rows = read_by_student(work / "grades.csv")
    assert sorted(rows) == sorted(students), sorted(rows)
    for student in students:
        assert (work / "feedback" / student / AID / f"{AID}.html").is_file(), student
        assert "grading-error" not in rows[student]["flags"], rows[student]
        line = next(x for x in out.splitlines() if x.startswith(f"graded {student}/"))
        assert float(line.split(" in ")[1].split(" s")[0]) < NOTEBOOK_TIMEOUT, line
    by_cell = read_grades_by_cell(work, AID)
    for student in ("honest", "setup.lock", "last_run.json"):  # copies of the solution: only
        flags = set(rows[student]["flags"].split(";")) - SIMILARITY  # the report says so
        assert float(rows[student]["score"]) == FULL and flags <= {""}, rows[student]
    assert "disk-limit" in rows["fills-disk"]["flags"].split(";"), rows["fills-disk"]
    for student in ("spams-progress", "header-bomb"):
        # the notebook's kernel serves the verdict; the attack breaks in on whichever request
        # is running then (a thread, see SERVER), so that check scores 0 too: never more than
        # the cells before the attacked one
        assert "tamper-suspected" in rows[student]["flags"].split(";"), rows[student]
        assert by_cell[(student, f"test_{ATTACKED}")][0] == 0
        assert float(rows[student]["score"]) <= UNTOUCHED, rows[student]
    assert peak_disk < 64 * MIB, f"{peak_disk / MIB:.0f} MiB on the host's disk"
    # an honest run's worker holds torch, nbgrader and the checks (~330 MiB here); the 63 MiB
    # header alone took 2.1 GB to parse
    assert peak_rss < 768 * MIB, f"{peak_rss / MIB:.0f} MiB in a trusted process"
