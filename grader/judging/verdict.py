"""Trusted verdicts: every autograded test cell is judged here, in a process that runs no
student code.

For one submission:
1. A sandboxed *subject* answers for the student's code: the notebook's own kernel once it has
   run the notebook (student code runs once per submission: the kernel serves
   grader/inside/subject.py's requests on the notebook's namespace over a private socket,
   ``KernelChannel``; its sandbox and limits are the kernel's). Where the kernel cannot serve (it
   died, or never connected), a fresh sandboxed process (grader/inside/subject.py, bubblewrap via
   grader.isolation.sandbox) executes the release's given cells (from the instructor's source
   notebook) and the student's answer cells (their cells whose grade_id is an answer cell of the
   source) — no test or experiment cells.
2. Here, the given cells run again (instructor code), and every contract name (what the source's
   answer cells define) is bound to a proxy of the subject's object (grader.judging.proxy).
3. Each test cell's own source (visible asserts and hidden checks) runs here against those proxies;
   a cell that finishes scores its points, one that raises scores 0. Inputs, weights and seeds are
   drawn here (os.urandom of this process), so the subject cannot predict them. The parts run in
   order (grader.bridge.hidden_tests.split_hidden), so the verdict also knows whether the visible
   part alone passed: that is what the kernel, which never sees hidden tests, should have reported.
The failure message (failure_message) is the student's to read: a check's own words (what was
observed, what was expected), or the name of the call and a short escaped excerpt of an error
their code raised (grader.judging.proxy.student_text) — never a traceback, a grader path or the
source of a check. The subject's sandbox mounts nothing of the grader: it is sent its own source as
text (subject.py, wire.py, instruments.py), the library-use scan of grader.checks.common, and the
source of any module of the checks' own that a check hands to the student's code (a model to
train or count, built by grader.judging.proxy.source_bundle), which must run there.
Only data crosses (grader.inside.wire). A subject that dies or stops answering scores the remaining
cells 0 with a message; if it dies while running its cells, it is started again without the cell
that killed it (as a kernel that died there would have left the notebook).
It cannot stall or harm the run (issue 21): it writes only to the sandbox's sized tmpfs, under
the kernel's disk monitor; each request has a limit that its progress events cannot extend, and
the whole verdict ends by the notebook's limit (Limits.notebook_timeout), however often a
subject is restarted; its answers are read under grader.inside.wire's reply caps and every index it
reports is checked. Such an end is a failed check, not a grading error: the cells it touched
score 0, and `Verdicts.flags` says why (timeout, disk-limit, tamper-suspected).

The verdict returns data and writes nothing: grader.commands.autograde's `record` step puts its
scores in the gradebook (once, with nbgrader's other rows) and its `flag` step compares them with
the kernel's (kernel_differences) and writes the review notes.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import re
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

import grader
from grader.bridge import cell_roles
from grader.bridge.hidden_tests import split_hidden
from grader.bridge.submission import Submission
from grader.checks import common
from grader.inside import instruments, subject, wire
from grader.isolation.disk_monitor import SandboxMonitor
from grader.isolation.limits import Limits
from grader.isolation.sandbox import SandboxSpec, _prepare_ownership
from grader.isolation.uids import UidLease, chown_tree
from grader.judging import proxy
from grader.records import flags as flag_names

MAX_MESSAGE = 2000  # characters of a failure message


@dataclass
class CellVerdict:
    grade_id: str
    score: float
    max_score: float
    message: str = ""  # why it failed (empty when it passed)
    # The score of the cell's visible tests alone, which is what the kernel (it runs the cell
    # without its hidden tests) reports; None: the cell has no hidden tests (the same as score).
    visible_score: float | None = None
    visible_known: bool = True  # False: a hidden test failed before a later visible one ran

    def kernel_should_report(self) -> float | None:
        """The score the kernel's run should have given this cell; None when unknown."""
        if not self.visible_known:
            return None
        return self.score if self.visible_score is None else self.visible_score


def notebook_parts(source_nb, submitted_nb) -> tuple[list, list[str], list]:
    """(subject cells [(label, source)], contract names, test cells [(grade_id, points, source)])
    in notebook order. Everything but the answer cells' text comes from the source notebook."""
    answers = {cell_roles.grade_id(c): c.source for c in submitted_nb.cells
               if c.cell_type == "code" and cell_roles.grade_id(c)}
    cells, names, tests = [], [], []
    for cell in source_nb.cells:
        if cell.cell_type != "code" or not cell_roles.metadata(cell):
            continue
        gid = cell_roles.grade_id(cell) or ""
        if cell_roles.is_solution(cell):
            text = answers.get(gid, "")
            cells.append((gid, text if isinstance(text, str) else ""))
            names += _defined_names(cell.source)
        elif cell_roles.is_grade(cell):
            tests.append((gid, cell_roles.points(cell), cell.source))
        elif cell_roles.is_locked(cell):
            cells.append((gid, cell.source))
    return cells, names, tests


def _defined_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
    return names


def given_cells(source_nb) -> list[tuple[str, str]]:
    return [(cell_roles.grade_id(c) or "", c.source) for c in source_nb.cells
            if c.cell_type == "code" and cell_roles.is_given(c)]


# --------------------------------------------------------------------------- the subject


def boot_source() -> str:
    """`python -c` text that installs wire.py and instruments.py under other names and runs
    subject.py."""
    text = "import sys, types\n"
    for name, module in (("grader_wire", wire), ("grader_instruments", instruments)):
        source = Path(module.__file__).read_text(encoding="utf-8")
        text += (f"m = types.ModuleType({name!r})\n"
                 f"exec(compile({source!r}, {Path(module.__file__).name!r}, 'exec'), "
                 "m.__dict__)\n"
                 f"sys.modules[{name!r}] = m\n")
    subject_src = Path(subject.__file__).read_text(encoding="utf-8")
    return text + (f"exec(compile({subject_src!r}, 'inside/subject.py', 'exec'), "
                   "{'__name__': 'subject_server'})\n")


def helpers_source() -> str:
    """The library-use scan of grader.checks.common, sent as source (the subject reports what
    its objects use; copying the library is the similarity report's business, not a score's)."""
    parts = ["import dis, types",
             f"FORBIDDEN_MODULE_PREFIXES = {common.FORBIDDEN_MODULE_PREFIXES!r}"]
    for f in (common._is_forbidden_name, common._code_objects, common._functions_of,
              common._global_reference):
        parts.append(inspect.getsource(f))
    scan = inspect.getsource(common.library_references)
    lines = [line for line in scan.splitlines() if "__subject_library_references__" not in line
             and "reported" not in line]
    parts.append("\n".join(lines))
    return "\n\n".join(parts)


class _SubjectSpec(SandboxSpec):
    runtime_writable = False  # it talks over pipes: no socket to make in the runtime folder

    def env(self) -> dict[str, str]:  # the subject needs no NBGRADER_* setting
        return {k: v for k, v in super().env().items() if not k.startswith("NBGRADER_")}


class Subject:
    """One started subject process and its client; close() ends it and its sandbox.

    Sandboxed, it writes only where the kernel can: the sized tmpfs of grader.isolation.sandbox (its
    working folder is the scratch tmpfs SCRATCH, not a host folder; the runtime folder is
    read-only), watched by the kernel's disk monitor. It ends by `deadline` (time.monotonic(),
    default: notebook_timeout from now), the submission's budget, whatever it answers."""

    def __init__(self, limits: Limits, sandbox: bool, deadline: float | None = None):
        self.deadline = (time.monotonic() + limits.notebook_timeout if deadline is None
                         else deadline)
        self.lease = UidLease() if sandbox and os.geteuid() == 0 else None
        tag = "" if self.lease is None else f"{self.lease.uid}-"
        self.runtime = Path(tempfile.mkdtemp(prefix=f"gsv-{tag}"))
        self.workdir = self.runtime / "work"  # --no-sandbox only; else bwrap's cwd outside
        self.workdir.mkdir()
        cmd = [sys.executable, "-I", "-c", boot_source()]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "HOME": str(self.workdir), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        if sandbox:
            spec = _SubjectSpec(None, self.runtime, limits,
                                None if self.lease is None else self.lease.uid)
            _prepare_ownership(spec)
            cmd = spec.argv(cmd)
        self.process = proxy.SubjectProcess(cmd, env, str(self.workdir))
        self.monitor: SandboxMonitor | None = None
        if sandbox:  # reports a full tmpfs (flag disk-limit); stops one past MAX_INODES
            self.monitor = SandboxMonitor(
                self.process.process.pid, limits, None, on_overflow=lambda: self.process.kill(
                    "your code filled the grader's process's folders", "disk"))
            self.monitor.start()
        self.client = proxy.Client(self.process, float(limits.cell_timeout), self.deadline)
        self.watchdog = threading.Timer(
            max(0.0, self.deadline - time.monotonic()), self.process.kill,
            args=(f"ran past the notebook's {limits.notebook_timeout} s in all", "timeout"))
        self.watchdog.daemon = True
        self.watchdog.start()

    @property
    def stopped_for(self) -> set[str]:
        """What stopped it or went wrong ("timeout", "protocol", "disk"): the flags' source."""
        full = {"disk"} if self.monitor is not None and self.monitor.full else set()
        return set(self.process.stopped_for) | full

    def close(self) -> None:
        self.watchdog.cancel()
        if self.monitor is not None:
            self.monitor.check()  # a last look while its tmpfs still exist
            self.monitor.stop()
        self.process.kill()
        if self.lease is not None:
            self.lease.release()
            chown_tree(self.runtime, os.getuid())
        shutil.rmtree(self.runtime, ignore_errors=True)


class KernelChannel:
    """The grader's end of the private channel on which the notebook's kernel serves the
    verdict after the notebook ran (grader.isolation.sandbox.SandboxedExecute.serve_verdict).

    A Unix socket this process listens on, in a folder of its own making that the kernel's
    sandbox sees read-only (connecting needs write permission on the socket file only, which is
    the kernel's user's alone); nothing here opens a path the student's process could have
    made. One connection is taken, from a process of that user (SO_PEERCRED), and that process
    is held by a pidfd, so a request that is not answered in time kills the kernel itself.
    What comes over it is wire.py's bounded data, as from a fresh subject."""

    def __init__(self, parent: Path, uid: int | None):
        self.uid = os.getuid() if uid is None else uid
        self.folder = Path(tempfile.mkdtemp(prefix="gvk-", dir=parent))
        os.chmod(self.folder, 0o711)  # the kernel's user may reach the socket, list nothing
        self.path = self.folder / "s"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        if uid is not None and uid != os.getuid():
            os.chown(self.path, uid, uid)
        self.listener.listen(1)
        self.ended = threading.Event()  # nbgrader's run of the notebook is over

    def notebook_ended(self) -> None:
        """The kernel is gone (or never connected): stop waiting for it."""
        self.ended.set()

    def accept(self, seconds: float) -> tuple[socket.socket, int] | None:
        """(the kernel's connection, its pid), or None when the notebook's run ended first or
        `seconds` passed."""
        deadline = time.monotonic() + seconds
        while not self.ended.is_set() and time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([self.listener], [], [], 0.2)
            except (OSError, ValueError):
                return None  # closed
            if not ready:
                continue
            conn, _ = self.listener.accept()
            pid, uid, _ = struct.unpack("3i", conn.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            if uid != self.uid:
                conn.close()
                continue
            self.close()  # one connection: no other process gets in later
            return conn, pid
        return None

    def close(self) -> None:
        """Stop listening (a connection not taken yet is reset) and remove the folder."""
        self.listener.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Stream:
    """SubjectProcess's `process` for a socket: stdin and stdout are its two directions."""

    def __init__(self, conn: socket.socket):
        self.stdin = conn.makefile("wb")
        self.stdout = conn.makefile("rb", buffering=0)


GRACE_SECONDS = 10  # after the verdict hangs up, for the kernel to end its loop's cell


class KernelProcess(proxy.SubjectProcess):
    """The kernel serving on a KernelChannel, as proxy.Client talks to a subject: kill() ends
    the kernel (by pidfd) and hangs up."""

    def __init__(self, conn: socket.socket, pid: int):
        self.conn = conn
        self.process = _Stream(conn)
        self.dead: str | None = None
        self.stopped_for: set[str] = set()  # as SubjectProcess's: the flags' source
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None

    def kill(self, why: str = "stopped", kind: str | None = None) -> None:
        if self.dead is None:
            self.dead = why
            if kind is not None:
                self.stopped_for.add(kind)
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
        self.hang_up()

    def hang_up(self) -> None:
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Hang up: the kernel's loop ends and nbgrader shuts the kernel down. A kernel still
        alive GRACE_SECONDS later (student code kept the loop's cell from ending) is killed,
        so that nbgrader's run goes on; its notebook has run by then."""
        if self.dead is None:
            self.dead = "closed"
        self.hang_up()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.conn.close()
        if self.pidfd is not None:
            timer = threading.Timer(GRACE_SECONDS, self._end)
            timer.daemon = True
            timer.start()

    def _end(self) -> None:
        pidfd, self.pidfd = self.pidfd, None
        if pidfd is None:
            return
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # a no-op on a process gone
        except OSError:
            pass
        os.close(pidfd)


class KernelSubject:
    """The notebook's kernel as the verdict's subject: a client, a whole-verdict watchdog."""

    def __init__(self, conn: socket.socket, pid: int, limits: Limits):
        self.process = KernelProcess(conn, pid)
        deadline = time.monotonic() + limits.notebook_timeout  # the verdict's budget
        self.client = proxy.Client(self.process, float(limits.cell_timeout), deadline)
        self.watchdog = threading.Timer(
            limits.notebook_timeout, self.process.kill,
            args=(f"ran past {limits.notebook_timeout} s in all", "timeout"))
        self.watchdog.daemon = True
        self.watchdog.start()

    @property
    def stopped_for(self) -> set[str]:
        """What stopped it ("timeout", "protocol"), as Subject.stopped_for; its tmpfs are the
        notebook's, watched by the kernel's own disk monitor."""
        return set(self.process.stopped_for)

    def close(self) -> None:
        self.watchdog.cancel()
        self.process.close()


def kernel_subject(channel: KernelChannel, limits: Limits) -> KernelSubject | None:
    """The notebook's kernel, connected and initialised (the library-use scan sent), or None
    when it did not connect before the notebook's run ended or did not answer."""
    accepted = channel.accept(2 * limits.notebook_timeout + proxy.STARTUP_SECONDS)
    channel.close()
    if accepted is None:
        return None
    sub = KernelSubject(*accepted, limits)
    try:
        sub.client.request({"op": "init", "cells": [], "helpers": helpers_source()})
    except (proxy.SubjectDied, Exception):  # noqa: BLE001 - it cannot serve: a fresh subject
        sub.process.kill("did not take the grader's helpers")
        sub.close()
        return None
    return sub


def start_subject(cells, limits: Limits, sandbox: bool, deadline: float | None = None,
                  stopped: set[str] | None = None) -> tuple[Subject, list, str]:
    """A subject that has run `cells`; if one cell kills it, again without that cell and those
    after it. Returns (subject, cell errors, note). What stopped a subject that is given up
    ("timeout", "protocol", "disk") is added to `stopped`."""
    note = ""
    last = [-1]  # index of the cell the subject is running (its progress events)

    def progress(event: dict) -> None:
        # the subject says which cell it starts: only the next one, in order, is believed (an
        # index it made up would pick the cell blamed below)
        index = event.get("index")
        if type(index) is not int or index != last[0] + 1 or index >= len(cells):
            raise wire.WireError(f"progress event for cell {proxy.student_text(index, 20)} "
                                 f"after cell {last[0]} of {len(cells)}")
        last[0] = index

    for _ in range(2):
        sub = Subject(limits, sandbox, deadline)
        last[0] = -1
        try:
            reply, _ = sub.client.request(
                {"op": "init", "cells": [list(c) for c in cells], "helpers": helpers_source()},
                on_event=progress, first_timeout=limits.cell_timeout + proxy.STARTUP_SECONDS,
                max_events=len(cells))
            errors = reply.get("errors", [])
            return sub, errors if isinstance(errors, list) else [], note
        except proxy.SubjectDied as e:
            sub.close()
            if stopped is not None:
                stopped.update(sub.stopped_for)
            if last[0] < 0:  # before any cell: nothing to leave out
                note = f"the grader's process for your code did not start ({e})"
                break
            note = f"your code stopped the grader's process in cell {cells[last[0]][0]!r} ({e})"
            cells = cells[:last[0]]
    return Subject(limits, sandbox, deadline), [], note


# --------------------------------------------------------------------------- judging


GRADER_FOLDER = Path(grader.__file__).resolve().parent


def failure_message(e: BaseException) -> str:
    """Why a test cell failed, for the student's feedback page. An error the student's code
    raised that no check caught: which call raised it, an excerpt of it, and what was expected.
    Anything else (a check's assertion, an error here on what came back): its type and message,
    with no path of the grader's files."""
    raised = proxy.subject_exception(e)
    if raised is not None:
        call = proxy.student_text(getattr(e, "subject_call", "your code"),
                                  proxy.MAX_STUDENT_NAME)
        return (f"{call} raised {raised}\n  expected: no error (the grader called it as the "
                "exercise's contract allows)")
    return _without_grader_paths(f"{type(e).__name__}: {e}")[:MAX_MESSAGE]


def _without_grader_paths(text: str) -> str:
    """`text` with every path into the grader package replaced by "<grader file>"."""
    for folder in {str(GRADER_FOLDER), str(Path(grader.__file__).parent)}:
        text = re.sub(re.escape(folder) + r"[^\s'\"]*", "<grader file>", text)
    return text


def run_test_cell(source: str, label: str, ns: dict) -> tuple[Exception | None, bool | None]:
    """Run a test cell here, its visible and hidden parts in order, in `ns`. Returns (the error
    that failed it, or None; whether its visible parts passed, None when a hidden part failed
    before a later visible part could run). SubjectDied passes through."""
    parts = split_hidden(source)
    try:
        codes = [(hidden, compile(text, f"<{label}>", "exec")) for hidden, text in parts]
    except SyntaxError:  # a hidden region inside a block: the parts are not code alone
        try:  # the whole cell at once (hidden None: visible and hidden code mixed)
            codes = [(None, compile(source, f"<{label}>", "exec"))]
        except SyntaxError as e:
            return e, None
    for index, (hidden, code) in enumerate(codes):
        try:
            exec(code, ns)
        except Exception as e:  # noqa: BLE001 - a failed test is a verdict
            if hidden is None:
                return e, None
            if not hidden:
                return e, False
            return e, None if any(not h for h, _ in codes[index + 1:]) else True
    return None, True


def _bind(sub: Subject, names: list[str], ns: dict) -> None:
    """The contract names in `ns` become proxies of the subject's objects (absent: unbound)."""
    for name in names:
        try:
            ns[name] = sub.client.lookup(name)
        except KeyError:
            ns.pop(name, None)  # NameError in the tests that use it


def judge(source_path: Path, submitted_path: Path, limits: Limits | None = None,
          sandbox: bool = True, kernel: KernelChannel | None = None) -> list[CellVerdict]:
    """Score every autograded test cell of a submission; the trusted verdicts, in order.

    kernel: the channel on which the notebook's kernel serves once the notebook has run (the
    first subject); without it, or when it does not serve, a fresh subject. A test whose
    request the subject does not answer in time (or that kills it) scores 0; the next test gets
    a fresh subject (as a kernel that was interrupted goes on with the next cell), until the
    notebook's time is spent."""
    limits = limits or Limits()
    deadline = time.monotonic() + limits.notebook_timeout
    source_nb = nbformat.read(source_path, as_version=4)
    submitted_nb = nbformat.read(submitted_path, as_version=4)
    cells, names, tests = notebook_parts(source_nb, submitted_nb)
    ns: dict = {"__name__": "__main__"}
    with _quiet():
        for label, source in given_cells(source_nb):  # instructor code: runs here too
            try:
                exec(compile(source, f"<{label}>", "exec"), ns)
            except Exception:  # noqa: BLE001 - the subject's copy is what matters
                pass
    verdicts = Verdicts()
    stopped: set[str] = set()  # what stopped its subjects (flags)
    sub: Subject | KernelSubject | None = None
    dead = ""
    note = ""
    try:
        if kernel is not None and tests:
            sub = kernel_subject(kernel, limits)
            deadline = time.monotonic() + limits.notebook_timeout  # from the verdict's start
            if sub is not None:
                try:
                    _bind(sub, names, ns)
                except proxy.SubjectDied:
                    sub.close()
                    sub = None
        for grade_id, points, source in tests:
            if sub is None and time.monotonic() < deadline:
                sub, _, note = start_subject(cells, limits, sandbox, deadline, stopped)
                try:
                    _bind(sub, names, ns)
                    dead = ""
                except proxy.SubjectDied as e:
                    dead = f"{note} {e}".strip()
            elif sub is None:
                dead = f"the notebook's time limit of {limits.notebook_timeout} s was spent"
                stopped.add("timeout")
            if sub is None or dead:
                verdicts.append(CellVerdict(grade_id, 0.0, points,
                                            _died(f"not run: your code's process ended ({dead})"),
                                            visible_known=False))
                continue
            try:
                with _quiet():
                    error, visible_ok = run_test_cell(source, grade_id, ns)
            except proxy.SubjectDied as e:
                verdicts.append(CellVerdict(grade_id, 0.0, points, _died(f"{note} {e}"),
                                            visible_known=False))
                sub.close()
                stopped.update(sub.stopped_for)
                sub = None  # the next test starts a fresh one
                continue
            hidden = any(h for h, _ in split_hidden(source))
            verdicts.append(CellVerdict(
                grade_id, points if error is None else 0.0, points,
                "" if error is None else failure_message(error),
                visible_score=(points if visible_ok else 0.0) if hidden else None,
                visible_known=visible_ok is not None))
    finally:
        if sub is not None:
            sub.close()
            stopped.update(sub.stopped_for)
        if kernel is not None:
            kernel.close()
    verdicts.note_stopped(stopped)
    return verdicts


class Verdicts(list):
    """The CellVerdicts of one submission, in order, and the flags of its subjects' ends:
    `timeout` (a request or the notebook's budget ran out), `disk-limit` (a tmpfs filled),
    `tamper-suspected` (the subject sent what no honest one sends), each with a review line."""

    def __init__(self, *args):
        super().__init__(*args)
        self.flags: list[str] = []
        self.notes: list[str] = []

    def note_stopped(self, stopped: set[str]) -> None:
        why = {"timeout": (flag_names.TIMEOUT, "your code's process ran out of time"),
               "disk": (flag_names.DISK_LIMIT, "your code filled the writable folders of the "
                        "grader's process (scratch folder, /tmp or /dev/shm)"),
               "protocol": (flag_names.TAMPER_SUSPECTED, "the process that ran your code sent "
                            "the grader something no honest run sends (the checks it was "
                            "answering scored 0)")}
        for kind in sorted(stopped & set(why)):
            self.flags.append(why[kind][0])
            self.notes.append(why[kind][1])


def _died(text: str) -> str:
    """A message about the subject's end (its reason may quote what the student's code sent)."""
    return proxy.student_text(text.strip(), 400)


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


# --------------------------------------------------------------------------- the submission

def kernel_differences(kernel_scores: dict[str, float],
                       verdicts: list[CellVerdict]) -> list[str]:
    """A line per cell where the kernel's score (what nbgrader's run of the notebook gave,
    `kernel_scores`: grade_id -> score) differs from what the grader's run of the same tests
    gives (the kernel runs a cell without its hidden tests: its visible part's score). Data
    only: grader.commands.autograde records the scores and flags the differences."""
    differences = []
    for v in verdicts:
        claimed, expected = kernel_scores.get(v.grade_id), v.kernel_should_report()
        if claimed is None or expected is None or claimed == expected:
            continue
        why = f" ({v.message.splitlines()[0][:300]})" if v.message else ""
        if v.visible_score is None:
            differences.append(f"{v.grade_id}: the notebook's kernel reported {claimed:g}, the "
                               f"grader's own run gives {v.score:g} / {v.max_score:g}{why}")
        else:
            differences.append(f"{v.grade_id}: the notebook's kernel reported {claimed:g} for "
                               f"the visible tests, the grader's own run of them gives "
                               f"{expected:g} (with the hidden tests: {v.score:g} / "
                               f"{v.max_score:g}){why}")
    return differences


def judge_submission(submission: Submission,
                     kernel: KernelChannel | None = None) -> list[CellVerdict]:
    """The trusted verdicts of one staged submission (its source and submitted notebooks, its
    limits and sandbox). autograde runs it while nbgrader executes the notebook, whose kernel
    then serves it on `kernel` (closed here, whatever happens). Returns data; writes nothing."""
    try:
        return judge(submission.source_notebook, submission.submitted_notebook,
                     submission.limits, submission.sandbox, kernel)
    finally:
        if kernel is not None:
            kernel.close()
