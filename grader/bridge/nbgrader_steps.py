"""nbgrader's own steps on a student's files, in a child process that is never root.

Started as root, the grader runs nbgrader's Autograde (the sanitising copy, the kernel run, the
executed notebook's writing, the permission step) and GenerateFeedback in a child process that
has dropped to a sandbox user id (grader.isolation.sandbox.UidLease: setuid/setgid, no groups),
inside a private working folder W owned by that user::

    W/source/<id>/              the assignment's non-notebook files (the instructor's)
    W/submitted/<s>/<id>/       a copy of the staged hand-in (regular files only)
    W/gradebook.db              a private gradebook: the assignment registered, no student
    W/autograded/, W/feedback/  nbgrader's output; only the child reads it

Children are forked by a ``ForkServer`` (one per grading process: nbgrader is imported once,
not once per submission); as root it runs in a bubblewrap view of Python, the venv, the
grader's packages and its folder R (W lies in R), keeping only CAP_SETUID/CAP_SETGID for the
children. A child answers JSON requests, one line each over its own socket, with data only:
nbgrader's log, the executed notebook's text, the feedback page's HTML (each size-bounded). The
trusted parent (grader.commands.autograde) writes the real gradebook, grades.csv, the notebook and
the page from that data, through grader.files (never through a link); nothing the child leaves in W
is read by the parent, and W is removed with rmtree, which follows no link. Feedback needs no
gradebook in the child: the parent reads the scores and comments and sends them
(``GivenGrades``).

Not root: there is no other user to become, so the children run as the grader's own user (still
in their own process and folder).

``python -m grader.bridge.nbgrader_steps FD`` is the fork server (FD: its socket to the parent).
"""

from __future__ import annotations

import atexit
import json
import multiprocessing.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict
from traitlets.config import Config

from grader.bridge import cell_roles
from grader.bridge.course import CourseLayout
from grader.bridge.nbgrader_config import KERNEL_ENV, build_config
from grader.bridge.submission import Submission
from grader.files import copy_hand_in, lstat_kind, name_problem, read_bytes, write_atomic
from grader.isolation.limits import Limits
from grader.isolation.sandbox import FORWARDED_ENV, SandboxSpec, _prepare_ownership, readonly_paths
from grader.isolation.uids import UidLease, chown_tree, is_zombie

MAX_LOG_CHARS = 400_000  # the tail of nbgrader's log that comes back (errors are at the end)
MAX_HTML_BYTES = 64 * 1024**2  # a feedback page: the capped notebook, rendered
STARTUP_SECONDS = 120  # on top of the notebook's own time limit, for a loaded machine


def grading_config(course_root: Path, db_url: str, timeout: int,
                   kernel_manager_class: str | None, sandbox: bool, limits: dict,
                   verdict_socket: str = "") -> Config:
    """nbgrader's Config for grading in `course_root` (autograde.GradingSettings.config);
    verdict_socket: where the kernel serves the trusted verdict after the notebook."""
    c = build_config(course_root, db_url, timeout, kernel_manager_class)
    # SandboxedExecute replaces nbgrader's Execute (sandbox or not: the watchdog, output
    # caps, dead-kernel handling and the integrity probe always apply).
    configure_execution(c, Limits(**{**limits, "cell_timeout": timeout}), sandbox,
                        verdict_socket)
    return c


def configure_execution(config, limits: Limits, sandbox: bool = True,
                        verdict_socket: str = "") -> None:
    """Point an nbgrader config at the sandboxed executor with these limits, hidden tests
    taken out of the test cells before it runs them. verdict_socket: the kernel serves the
    trusted verdict there after the notebook (its folder is shown to the sandbox read-only)."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    from grader.bridge.hidden_tests import HideHiddenTests
    from grader.isolation.sandbox import SandboxedExecute

    steps = [SandboxedExecute if step is Execute else step
             for step in Autograde.class_traits()["autograde_preprocessors"].default()]
    # the kernel runs test cells without their hidden tests (grader.bridge.hidden_tests)
    config.Autograde.autograde_preprocessors = [HideHiddenTests, *steps]
    config.Execute.timeout = limits.cell_timeout
    config.SandboxedExecute.cell_output_bytes = limits.cell_output_bytes
    config.SandboxedExecute.notebook_output_bytes = limits.notebook_output_bytes
    config.SandboxKernelManager.sandbox = sandbox
    config.SandboxKernelManager.notebook_timeout = limits.notebook_timeout
    config.SandboxKernelManager.memory_bytes = limits.memory_bytes
    config.SandboxKernelManager.max_processes = limits.max_processes
    config.SandboxKernelManager.tmpfs_bytes = limits.tmpfs_bytes
    config.SandboxKernelManager.disk_bytes = limits.disk_bytes
    config.SandboxedExecute.outputs_per_cell = limits.outputs_per_cell
    config.SandboxedExecute.notebook_bytes = limits.notebook_bytes
    config.SandboxedExecute.store_widget_state = False  # widget state is unbounded; unused
    config.SandboxedExecute.verdict_socket = verdict_socket
    config.SandboxedExecute.serve_timeout = limits.notebook_timeout
    if verdict_socket:
        config.SandboxKernelManager.extra_readonly = [str(Path(verdict_socket).parent)]
    # Every output has arrived when the last cell's reply is in (and the integrity probe has
    # answered): a graceful shutdown_request only waits ~1 s for ipykernel to stop itself
    # before the sandbox is killed anyway.
    config.SandboxedExecute.shutdown_kernel = "immediate"


def template_path(course_root: Path, assignment_id: str) -> Path:
    """The private gradebook a child starts from: the assignment registered, nothing else."""
    return CourseLayout(Path(course_root)).template(assignment_id)


# --------------------------------------------------------------------------- the parent's side


class ForkServer:
    """A process that has imported nbgrader once and forks one child per request, so a child
    costs a fork, not an interpreter start (one per grading process, started on first use,
    ended with it). Root: it runs in a bubblewrap sandbox that sees the Python install, the
    venv, the grader's packages and its own folder R only, keeps CAP_SETUID/CAP_SETGID (nothing
    else), and its children setuid to a leased user at once; the kernels they start get their
    own sandbox inside (host_proc). Not root: a plain process whose children stay this user."""

    def __init__(self, limits: Limits):
        # R: the children's folders (gsz-<pid>-*: a leftover names the process that left it)
        remove_stale_folders()
        self.root = Path(tempfile.mkdtemp(prefix=f"gsz-{os.getpid()}-"))
        os.chmod(self.root, 0o711)  # a child may reach its own folder, list no other
        self.sock, theirs = socket.socketpair()
        cmd = [sys.executable, "-P", "-m", "grader.bridge.nbgrader_steps", str(theirs.fileno())]
        self.drops = os.geteuid() == 0  # its children become leased users
        if self.drops and shutil.which("bwrap"):
            spec = _ServerSpec(None, self.root, limits, 0, host_proc=True, grader_files=None)
            _prepare_ownership(spec)
            cmd = spec.argv(cmd)
        elif self.drops and not all(_reachable_by_others(p) for p in readonly_paths()):
            self.drops = False  # another user could not even run this Python
            print("warning: grading as root without bubblewrap, and this Python install is not "
                  "readable by other users: nbgrader's steps run as root (only for code you "
                  "trust; run the grader as a normal user instead)", file=sys.stderr)
        self.process = subprocess.Popen(cmd, env=child_env(self.root), cwd=self.root,
                                        pass_fds=[theirs.fileno()], start_new_session=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        self.answers = self.sock.makefile("rb")
        self.lock = threading.Lock()

    def fork(self, folder: Path, uid: int | None) -> tuple[socket.socket, int]:
        """A new child working in `folder` as `uid` (None: this user): (its socket, its pid)."""
        mine, theirs = socket.socketpair()
        with self.lock:
            socket.send_fds(self.sock, [json.dumps({"folder": str(folder), "uid": uid})
                                        .encode() + b"\n"], [theirs.fileno()])
            line = self.answers.readline(100)
        theirs.close()
        if not line.strip().isdigit():
            raise RuntimeError("nbgrader's fork server did not start a child")
        return mine, int(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.sock.fileno() == -1:
            return  # closed already
        try:  # the server sees the end now (close() alone waits for self.answers too)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.answers.close()
        self.sock.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def remove_stale_folders() -> None:
    """Remove the folders R of this user's fork servers whose grading process has ended (one
    that was killed runs no atexit); rmtree follows no link."""
    for folder in Path(tempfile.gettempdir()).glob("gsz-*-*"):
        pid = folder.name.split("-")[1]
        try:
            mine = os.lstat(folder).st_uid == os.geteuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


_SERVER: ForkServer | None = None


def fork_server(limits: Limits) -> ForkServer:
    """This process's fork server (started, or started again if it died)."""
    global _SERVER
    if _SERVER is None or not _SERVER.alive():
        _SERVER = ForkServer(limits)
        atexit.register(_SERVER.close)
        # a worker of a process pool ends without atexit, but runs multiprocessing's finalizers
        multiprocessing.util.Finalize(None, _SERVER.close, exitpriority=10)
    return _SERVER


class StepsChild:
    """One child (as a leased sandbox user when the grader is root) and its folder W.

    stage() fills W before the child starts; request() sends one request and returns the
    child's answer (a dict of plain data); close() ends the child, every process of its user,
    and removes W."""

    def __init__(self, settings: dict, timeout: float):
        self.settings = settings  # grading_config's arguments but the paths (JSON-able)
        self.timeout = timeout
        self.server = fork_server(Limits(**settings["limits"]))
        self.lease = UidLease() if self.server.drops else None
        self.uid = None if self.lease is None else self.lease.uid
        self.runtime = Path(tempfile.mkdtemp(dir=self.server.root))
        self.folder = self.runtime / "work"  # W
        self.folder.mkdir()
        self.sock: socket.socket | None = None
        self.pid: int | None = None

    def __enter__(self) -> StepsChild:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stage(self, submission: Submission) -> None:
        """W for autograding: the hand-in staged in DIR/submitted (regular files only, copied
        without following links), the source's other files, the template gradebook."""
        aid = submission.assignment_id
        copy_hand_in(submission.submitted,
                     CourseLayout(self.folder).submitted(submission.student_id, aid))
        source = CourseLayout(self.folder).source(aid)
        copy_hand_in(submission.layout.source(aid), source)
        (source / f"{aid}.ipynb").unlink(missing_ok=True)  # the gradebook has it
        write_atomic(CourseLayout(self.folder).gradebook(),
                     read_bytes(submission.layout.template(aid)), mode=0o600)

    def start(self) -> None:
        if self.uid is not None:  # W becomes the child's; nothing else is
            chown_tree(self.runtime, self.uid)
        os.chmod(self.runtime, 0o700)
        self.sock, self.pid = self.server.fork(self.folder, self.uid)
        self._answers = self.sock.makefile("rb")

    def request(self, request: dict, limit: int) -> dict:
        """Send `request`; the answer, at most `limit` bytes of JSON. A child that does not
        answer in time, answers too much or dies: RuntimeError."""
        if self.sock is None:
            self.start()
        timer = threading.Timer(self.timeout, self._kill)
        timer.daemon = True
        timer.start()
        try:
            self.sock.sendall((json.dumps(request) + "\n").encode())
            line = self._answers.readline(limit + 1)
        except OSError:
            line = b""
        finally:
            timer.cancel()
        if not line.endswith(b"\n"):
            why = "answered more than the limit" if len(line) > limit else "gave no answer"
            self._kill()
            raise RuntimeError(f"nbgrader's child process {why}")
        answer = json.loads(line)
        if not isinstance(answer, dict) or not isinstance(answer.get("log", ""), str):
            raise RuntimeError("nbgrader's child process answered something else than data")
        return answer

    def _kill(self) -> None:
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # the child made its own process group
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RDWR)  # the child's loop ends
            self._answers.close()
            self.sock.close()
            self._wait_gone()
        if self.lease is not None:  # kills whatever that user still runs
            self.lease.release()
            self.lease = None
        shutil.rmtree(self.runtime, ignore_errors=True)  # as root: rmtree follows no link

    def _wait_gone(self, seconds: float = 10.0) -> None:
        """The child exits once its socket closes; SIGKILL it if it has not in `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            if is_zombie(self.pid):
                return
            time.sleep(0.02)
        self._kill()


def _reachable_by_others(path: Path) -> bool:
    """Every folder from / down to `path` can be entered by any user."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [*reversed(path.parents), path])


class _ServerSpec(SandboxSpec):
    """The fork server's sandbox: its own environment (child_env), nothing of the grader's."""

    def env(self) -> dict[str, str]:
        return child_env(self.runtime_dir)


def child_env(folder: Path) -> dict[str, str]:
    """The children's environment: the venv's bin/ first (nbgrader starts `alembic` only for a
    new gradebook; a child's is a copy of the template, but any tool it starts is the venv's),
    $HOME in their folder, the grader's own packages importable; no instructor's secrets."""
    import grader

    packages = str(Path(grader.__file__).resolve().parents[1])
    python_path = [packages, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p]]
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                     os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": str(folder), "LANG": "C.UTF-8", "TMPDIR": tempfile.gettempdir(),
            "PYTHONPATH": os.pathsep.join(python_path),
            **{k: v for k, v in os.environ.items() if k in FORWARDED_ENV}}


def autograde(child: StepsChild, submission: Submission, verdict_socket: str = "") -> dict:
    """{"ok", "log", "notebook"}: W staged (StepsChild.stage), then nbgrader's Autograde of it
    (notebook: the executed notebook's text, or None); its kernel serves the verdict on
    verdict_socket after the notebook (grader.judging.verdict.KernelChannel), when given."""
    child.stage(submission)
    settings = {**child.settings, "verdict_socket": verdict_socket}
    answer = child.request({"op": "autograde", "student_id": submission.student_id,
                            "assignment_id": submission.assignment_id, "settings": settings},
                           limit=4 * submission.limits.notebook_bytes + 2 * MAX_LOG_CHARS
                           + 10_000)
    notebook = answer.get("notebook")
    if notebook is not None and not isinstance(notebook, str):
        raise RuntimeError("nbgrader's child process sent a notebook that is not text")
    return {"ok": answer.get("ok") is True, "log": answer.get("log", ""), "notebook": notebook,
            "seconds": answer.get("seconds")}


def feedback(child: StepsChild, submission: Submission, notebook: str, grades: dict) -> dict:
    """{"ok", "log", "html"}: GenerateFeedback of `notebook` with the given grades."""
    answer = child.request({"op": "feedback", "student_id": submission.student_id,
                            "assignment_id": submission.assignment_id,
                            "settings": child.settings, "notebook": notebook,
                            "grades": grades},
                           limit=2 * MAX_HTML_BYTES + 2 * MAX_LOG_CHARS)
    html = answer.get("html")
    if html is not None and not isinstance(html, str):
        raise RuntimeError("nbgrader's child process sent a page that is not text")
    return {"ok": answer.get("ok") is True and html is not None,
            "log": answer.get("log", ""), "html": html}


# --------------------------------------------------------------------------- the child's side


class GivenGrades(NbGraderPreprocessor):
    """nbgrader's GetGrades with the scores and comments given as data (the child has no
    gradebook): grades = {"cells": {grade_id: {"score", "max_score", "comment"}}, "score",
    "max_score", "late_penalty"}, read from the real gradebook by the parent."""

    grades = Dict().tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        nb, resources = super().preprocess(nb, resources)
        late = self.grades.get("late_penalty") or 0
        if late:
            self.log.warning("Late submission penalty: %s", late)
        resources["nbgrader"].update(score=self.grades["score"] - late,
                                     max_score=self.grades["max_score"], late_penalty=late)
        return nb, resources

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, index: int):
        if not (cell_roles.is_solution(cell) or cell_roles.is_grade(cell)
                or cell_roles.is_task(cell)):
            return cell, resources
        given = self.grades["cells"][cell_roles.grade_id(cell)]  # as GetGrades
        if cell_roles.is_solution(cell) or cell_roles.is_task(cell):
            cell.metadata.nbgrader["comment"] = given.get("comment")
        if cell_roles.is_grade(cell) or cell_roles.is_task(cell):
            cell.metadata.nbgrader["score"] = given.get("score")
            cell.metadata.nbgrader["points"] = given.get("max_score")
        return cell, resources


def _coursedir(config: Config, student_id: str, assignment_id: str):
    from nbgrader.coursedir import CourseDirectory

    for name in (student_id, assignment_id):
        if name_problem(name):  # checked by the parent too; never a glob or a path here
            raise ValueError(f"refused name {name!r}")
    coursedir = CourseDirectory(config=config)
    coursedir.student_id, coursedir.assignment_id = student_id, assignment_id
    return coursedir


def _config(request: dict) -> Config:
    from grader.bridge.course import sqlite_url

    root = Path.cwd()
    return grading_config(root, sqlite_url(root), **request["settings"])


def _run(app) -> tuple[bool, str]:
    import logging

    app.log.setLevel(logging.INFO)
    result = utils.capture_log(app)
    return bool(result["success"]), (result.get("log", "") + result.get("error", ""))


def op_autograde(request: dict) -> dict:
    from nbformat.warnings import MissingIDFieldWarning
    from nbgrader.converters import Autograde
    from sqlalchemy.exc import SAWarning

    sid, aid = request["student_id"], request["assignment_id"]
    config = _config(request)
    app = Autograde(coursedir=_coursedir(config, sid, aid), config=config)
    app.force = True
    with utils.setenv(**KERNEL_ENV), warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy autoflush warnings; the rows are right
        warnings.simplefilter("ignore", SAWarning)
        # a test cell the student deleted comes back without a cell id (add_missing_cells)
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        ok, log = _run(app)
    path = CourseLayout(Path.cwd()).autograded_notebook(sid, aid)
    notebook = read_bytes(path).decode("utf-8") if ok and lstat_kind(path) == "file" else None
    return {"ok": ok and notebook is not None, "log": log, "notebook": notebook}


def op_feedback(request: dict) -> dict:
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback

    sid, aid = request["student_id"], request["assignment_id"]
    config = _config(request)
    folder = CourseLayout(Path.cwd()).autograded(sid, aid)
    if lstat_kind(folder) == "dir":
        shutil.rmtree(folder)  # the autograde step's copy: only the given notebook is shown
    folder.mkdir(parents=True)
    write_atomic(folder / f"{aid}.ipynb", request["notebook"].encode("utf-8"))
    config.GenerateFeedback.preprocessors = [GivenGrades, CSSHTMLHeaderPreprocessor]
    config.GivenGrades.grades = request["grades"]
    config.HTMLExporter.template_name = "feedback"
    app = GenerateFeedback(coursedir=_coursedir(config, sid, aid), config=config)
    app.force = True
    ok, log = _run(app)
    page = CourseLayout(Path.cwd()).feedback_page(sid, aid)
    html = (read_bytes(page, limit=MAX_HTML_BYTES).decode("utf-8")
            if ok and lstat_kind(page) == "file" else None)
    return {"ok": ok and html is not None, "log": log, "html": html}


def op_identity(request: dict) -> dict:
    """Who the child is and which of request["paths"] it can see (for the tests)."""
    return {"ok": True, "log": "", "uid": os.getuid(), "euid": os.geteuid(),
            "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
            "sees": {p: os.path.exists(p) for p in request.get("paths", [])}}


OPS = {"autograde": op_autograde, "feedback": op_feedback, "identity": op_identity}


def serve(channel: socket.socket) -> None:
    """Answer requests from `channel`, one JSON line each, until it closes."""
    answers = channel.makefile("w", encoding="utf-8")
    for line in channel.makefile("r", encoding="utf-8"):
        started = time.monotonic()
        try:
            request = json.loads(line)
            answer = OPS[request["op"]](request)
        except Exception:  # noqa: BLE001 - reported to the parent as a failed step
            answer = {"ok": False, "log": traceback.format_exc()}
        answer["log"] = answer.get("log", "")[-MAX_LOG_CHARS:]
        answer["seconds"] = round(time.monotonic() - started, 2)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def _become(folder: str, uid: int | None) -> None:
    """The forked child: its own process group, the leased user (no groups), its folder."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server ignores it; Popen must not
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # real, effective and saved: root cannot come back
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("could not drop privileges")
    os.chdir(folder)
    os.environ["HOME"] = folder


def main(fd: int) -> int:
    """The fork server: for each request (a folder, a uid and a socket), fork a child that
    becomes that user and answers requests on that socket; reply with its pid."""
    # imported once, before any fork (what Autograde and GenerateFeedback import lazily too)
    import ipykernel.kernelspec  # noqa: F401
    import IPython.display  # noqa: F401
    import nbconvert.exporters.html  # noqa: F401
    import nbgrader.api  # noqa: F401
    import nbgrader.converters  # noqa: F401
    import sqlalchemy.dialects.sqlite  # noqa: F401

    server = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing printed reaches the grader's output
    while True:
        message, fds, _, _ = socket.recv_fds(server, 4096, 1)
        if not message or not fds:
            return 0
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            server.close()
            code = 0
            try:
                _become(request["folder"], request["uid"])
                serve(socket.socket(fileno=fds[0]))
            except BaseException:  # noqa: BLE001 - the parent sees no answer: a failed step
                code = 1
            os._exit(code)
        os.close(fds[0])
        server.sendall(f"{pid}\n".encode())


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
