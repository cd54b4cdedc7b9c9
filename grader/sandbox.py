"""Run each submission's kernel in a sandbox: no network, a private filesystem view, rlimits.

How a graded kernel is started (``SandboxKernelManager``)::

    bwrap  --unshare-pid/net/ipc/uts --die-with-parent --new-session   (Debian's bubblewrap)
           read-only: /usr, the Python install, the venv, the grader and library packages
           writable:  the notebook's own working folder, a runtime folder with the IPC sockets
           tmpfs:     /tmp and $HOME; nothing else of the machine (no solutions/, gradebook,
                      other submissions, instructor's home) exists inside
      setpriv --reuid U    (only when the grader runs as root: rlimits do not bind root)
        prlimit --as --nproc --cpu --fsize --nofile --core=0
          python -c 'import grader.tamper; grader.tamper.start_kernel()' -f kernel.json

The kernel has no network, so it is reached over jupyter_client's IPC transport (Unix sockets in
the runtime folder). A watchdog thread kills the whole sandbox when the notebook's wall-clock
budget is spent; the PID namespace guarantees that every process the notebook started dies with
it. ``SandboxedExecute`` is nbgrader's Execute preprocessor with that kernel manager, output
capping, graceful handling of a dead kernel, and a record of what happened in the notebook's
metadata (``grader_run``), which the autograde command turns into flags.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, List, Unicode

from grader.limits import Limits

RUN_METADATA_KEY = "grader_run"  # notebook metadata written by SandboxedExecute
UID_BASE, UID_SLOTS = 61000, 1000  # uids for sandboxes when grading as root (one per kernel)
LOCK_DIR = Path(tempfile.gettempdir()) / "grader-sandbox-uids"
# The grader's settings for kernels pass through; nothing else of the instructor's environment
# (tokens, database passwords) reaches the notebook.
FORWARDED_ENV = {"PYTHONWARNINGS", "MPLBACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "PYTHONHASHSEED", "TZ"}
KERNEL_BOOT = "import grader.tamper; grader.tamper.start_kernel()"


# --------------------------------------------------------------------------- availability


def _package_dir(name: str) -> Path:
    module = __import__(name)
    return Path(module.__file__).resolve().parent


def readonly_paths() -> list[Path]:
    """What the kernel may read besides /usr: Python, the venv, the grader and library packages."""
    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix),
             Path(sys.executable).resolve().parent, _package_dir("grader")]
    try:
        paths.append(_package_dir("resnet_course"))  # notebooks load data with it
    except ImportError:
        pass
    unique: list[Path] = []
    for p in paths:
        if p.exists() and p not in unique and not any(p.is_relative_to(q) for q in unique):
            unique = [q for q in unique if not q.is_relative_to(p)] + [p]
    return unique


@functools.lru_cache(maxsize=1)
def sandbox_available() -> tuple[bool, str]:
    """(True, "") when a sandboxed Python can start here, else (False, why not)."""
    if not sys.platform.startswith("linux"):
        return False, f"the sandbox needs Linux namespaces; this is {sys.platform}"
    for tool in ("bwrap", "prlimit") + (("setpriv",) if os.geteuid() == 0 else ()):
        if shutil.which(tool) is None:
            package = {"bwrap": "bubblewrap"}.get(tool, "util-linux")
            return False, f"`{tool}` not found (Debian: apt-get install {package})"
    with tempfile.TemporaryDirectory(prefix="gsb-probe-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        spec = SandboxSpec(workdir=work, runtime_dir=Path(tmp), limits=Limits(), uid=_probe_uid())
        code = "import os, socket; open('probe', 'w').write(str(os.getuid()))"
        argv = spec.argv([sys.executable, "-c", code])
        _prepare_ownership(spec)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"bubblewrap failed to start: {e}"
        if done.returncode != 0 or not (work / "probe").exists():
            why = done.stderr.strip()[-500:]
            return False, f"bubblewrap failed (exit {done.returncode}): {why}"
    return True, ""


def _probe_uid() -> int | None:
    return UID_BASE + UID_SLOTS - 1 if os.geteuid() == 0 else None


# --------------------------------------------------------------------------- the command line


class SandboxSpec:
    """One sandbox: its writable folder, runtime folder (sockets), limits and user id."""

    def __init__(self, workdir: Path, runtime_dir: Path, limits: Limits, uid: int | None,
                 extra_readonly: list[Path] | None = None):
        self.workdir = Path(workdir).resolve()
        self.runtime_dir = Path(runtime_dir).resolve()
        self.limits = limits
        self.uid = uid  # None: not root, so bwrap maps the caller's uid in a user namespace
        self.extra_readonly = [Path(p).resolve() for p in (extra_readonly or [])]

    def env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.prefix) / "bin")
        return {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": "/home/student",
                "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
                "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JPY_PARENT_PID": "0",
                **{k: v for k, v in os.environ.items() if k in FORWARDED_ENV
                   or k.startswith("NBGRADER_")}}

    def argv(self, cmd: list[str]) -> list[str]:
        a = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        if self.uid is None:
            a += ["--unshare-user"]
        else:  # root: keep only what setpriv needs to become the sandbox user, then drop it
            a += ["--cap-add", "CAP_SETUID,CAP_SETGID"]
        a += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / top
            if host.is_symlink():
                a += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                a += ["--ro-bind", str(host), str(host)]
        a += ["--perms", "0755", "--dir", "/etc"]
        for etc in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives",
                    "fonts", "mime.types"):
            a += ["--ro-bind-try", f"/etc/{etc}", f"/etc/{etc}"]
        a += ["--ro-bind", str(self.runtime_dir / "passwd"), "/etc/passwd",
              "--ro-bind", str(self.runtime_dir / "group"), "/etc/group"]
        a += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
              "--perms", "1777", "--tmpfs", "/tmp",  # shm: DataLoader workers, semaphores
              "--perms", "0755", "--dir", "/home", "--perms", "0777", "--tmpfs", "/home/student"]
        mounts = [(p, "--ro-bind") for p in readonly_paths() + self.extra_readonly]
        mounts += [(self.runtime_dir, "--bind"), (self.workdir, "--bind")]
        made: set[Path] = {Path("/"), Path("/tmp"), Path("/home")}
        for path, how in mounts:  # parents readable by the sandbox user (bwrap makes them 0700)
            for parent in reversed(path.parents):
                if parent not in made and not _under_system_dir(parent):
                    a += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            a += [how, str(path), str(path)]
            made.add(path)
        a += ["--chdir", str(self.workdir), "--clearenv"]
        for key, value in self.env().items():
            a += ["--setenv", key, value]
        a += ["--"]
        if self.uid is not None:
            a += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return a + ["prlimit", *self.limits.rlimit_args(), "--", *cmd]


def _under_system_dir(path: Path) -> bool:
    return path.parts[:2] in {("/", "usr"), ("/", "proc"), ("/", "dev")}


def _prepare_ownership(spec: SandboxSpec) -> None:
    """Files the sandbox user needs: its passwd entry, and write access to its two folders."""
    uid = os.getuid() if spec.uid is None else spec.uid
    gid = os.getgid() if spec.uid is None else spec.uid
    (spec.runtime_dir / "passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\nstudent:x:{uid}:{gid}::/home/student:/bin/sh\n")
    (spec.runtime_dir / "group").write_text(f"root:x:0:\nstudent:x:{gid}:\n")
    if spec.uid is not None:
        chown_tree(spec.workdir, spec.uid)
        chown_tree(spec.runtime_dir, spec.uid)


def chown_tree(root: Path, uid: int) -> None:
    """chown without following links: the notebook may have left symlinks to anything."""
    os.chown(root, uid, uid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            try:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
            except FileNotFoundError:
                pass


# --------------------------------------------------------------------------- process hygiene


class UidLease:
    """A sandbox user id held (flock) for one kernel's life, so concurrent sandboxes never share
    one: RLIMIT_NPROC counts per user, and one fork bomb must not starve another job's kernel."""

    def __init__(self) -> None:
        LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        start = os.getpid() % (UID_SLOTS - 1)
        for k in range(UID_SLOTS - 1):
            uid = UID_BASE + (start + k) % (UID_SLOTS - 1)
            fd = os.open(LOCK_DIR / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            kill_user_processes(uid)  # leftovers of a grader that was killed (should be none)
            for stale in Path(tempfile.gettempdir()).glob(f"gsb-{uid}-*"):
                shutil.rmtree(stale, ignore_errors=True)  # its runtime folders, likewise
            return
        raise RuntimeError("no free sandbox user id: too many kernels at once")

    def release(self) -> None:
        if self._fd is not None:
            kill_user_processes(self.uid)
            os.close(self._fd)
            self._fd = None


def user_processes(uid: int) -> list[int]:
    """Pids of live processes whose real uid is `uid` (read from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                pids.append(int(entry))
            if line.startswith("Uid:"):
                break
    return pids


def kill_user_processes(uid: int, wait: float = 10.0) -> None:
    """SIGKILL every process of `uid`, then wait (up to `wait` s) until they are gone."""
    deadline = time.monotonic() + wait
    while True:
        pids = user_processes(uid)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


# --------------------------------------------------------------------------- kernel manager


class SandboxKernelManager(AsyncKernelManager):
    """A kernel in a bubblewrap sandbox (or, with sandbox=False, a plain kernel that still has the
    notebook watchdog and the tamper baseline). Configure with c.SandboxKernelManager.*."""

    sandbox = Bool(True, help="Run the kernel in bubblewrap (False: --no-sandbox)").tag(config=True)
    notebook_timeout = Integer(Limits.notebook_timeout).tag(config=True)
    memory_bytes = Integer(Limits.memory_bytes).tag(config=True)
    max_processes = Integer(Limits.max_processes).tag(config=True)
    extra_readonly = List(Unicode(), help="More read-only paths for the kernel").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"  # no TCP: the sandbox has its own (empty) network namespace
        self.watchdog_fired = False
        self._watchdog: threading.Timer | None = None
        self._lease: UidLease | None = None
        self._runtime_dir: Path | None = None
        self._workdir: Path | None = None

    def limits(self) -> Limits:
        return Limits(notebook_timeout=self.notebook_timeout, memory_bytes=self.memory_bytes,
                      max_processes=self.max_processes)

    async def _async_pre_start_kernel(self, **kw):
        self._lease = UidLease() if self.sandbox and os.geteuid() == 0 else None
        tag = "" if self._lease is None else f"{self._lease.uid}-"
        self._runtime_dir = Path(tempfile.mkdtemp(prefix=f"gsb-{tag}"))  # short: socket path
        self.connection_file = str(self._runtime_dir / "kernel.json")
        self.ip = str(self._runtime_dir / "k")
        kw.setdefault("cwd", os.getcwd())
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        # kernel_cmd is [python, -m, ipykernel_launcher, -f, FILE, *extra]: keep the arguments,
        # start it through grader.tamper, which records the untouched interpreter first.
        args = kernel_cmd[kernel_cmd.index("-f"):]
        cmd = [sys.executable, "-c", KERNEL_BOOT, *args]
        self._workdir = Path(kw["cwd"]).resolve()
        if self.sandbox:
            spec = SandboxSpec(self._workdir, self._runtime_dir, self.limits(),
                               None if self._lease is None else self._lease.uid,
                               [Path(p) for p in self.extra_readonly])
            _prepare_ownership(spec)
            cmd = spec.argv(cmd)
            kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        # The kernel's own fd 1/2 (C-level prints, crash messages) must not flood the grader.
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        return cmd, kw

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        self._watchdog = threading.Timer(self.notebook_timeout, self._kill_from_watchdog)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _kill_from_watchdog(self) -> None:
        self.watchdog_fired = True
        self.kill_sandbox()

    def kill_sandbox(self) -> None:
        """SIGKILL the kernel's process group; with bwrap that ends the PID namespace."""
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()

    async def _async_interrupt_kernel(self) -> None:
        # Signals cannot cross into the new session; ipykernel interrupts itself on request.
        if self.has_kernel:
            msg = self.session.msg("interrupt_request", content={})
            self._connect_control_socket()
            self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel  # AsyncKernelManager binds the base's by name

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.kill_sandbox()
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        await super()._async_cleanup_resources(restart=restart)
        self._release()

    cleanup_resources = _async_cleanup_resources

    def _release(self) -> None:
        if self._lease is not None:
            self._lease.release()
            if self._workdir is not None and self._workdir.exists():
                chown_tree(self._workdir, os.getuid())  # hand the copy back to the grader
            self._lease = None
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)
            self._runtime_dir = None


# --------------------------------------------------------------------------- preprocessor


class SandboxedExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel, capped output and a run report.

    A dead kernel (segfault, os._exit, the memory limit, the notebook watchdog) does not abort
    the notebook: the cells that ran keep their outputs, every later cell gets an error output,
    so nbgrader scores what could not run as 0 and grading goes on.
    """

    cell_output_bytes = Integer(Limits.cell_output_bytes).tag(config=True)
    notebook_output_bytes = Integer(Limits.notebook_output_bytes).tag(config=True)
    tamper_probe = Bool(True, help="Ask the kernel for its integrity report at the end"
                        ).tag(config=True)

    def __init__(self, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(**kwargs)

    def preprocess(self, nb, resources=None, km=None):
        from nbclient.client import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._report = {"cell_timeouts": 0, "kernel_died": False, "watchdog": False,
                        "output_truncated": False, "tamper_runtime": None, "sandboxed": None}
        self._out_total, self._out_cell, self._out_cell_index = 0, 0, -1
        started = time.monotonic()
        with self.setup_kernel():
            manager = self.km
            info = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info["content"]["language_info"]
            dead = False
            for index, cell in enumerate(self.nb.cells):
                if dead:
                    _mark_not_run(cell)
                    continue
                try:
                    self.preprocess_cell(cell, resources, index)
                except DeadKernelError:
                    dead = True
                    _mark_not_run(cell)
                except CellTimeoutError:  # interrupted but silent: the kernel is wedged
                    self._report["cell_timeouts"] += 1
                    self._report["kernel_stopped"] = True
                    manager.kill_sandbox() if hasattr(manager, "kill_sandbox") else None
                    dead = True
                    _mark_not_run(cell)
            if not dead and self.tamper_probe:
                self._report["tamper_runtime"] = self._probe_integrity()
        self._report["kernel_died"] = dead
        self._report["watchdog"] = bool(getattr(manager, "watchdog_fired", False))
        self._report["sandboxed"] = bool(getattr(manager, "sandbox", False))
        self._report["seconds"] = round(time.monotonic() - started, 1)
        self.nb.metadata[RUN_METADATA_KEY] = self._report
        self.set_widgets_metadata()
        return self.nb, self.resources

    async def _async_handle_timeout(self, timeout, cell=None):
        self._report["cell_timeouts"] += 1
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most cell_output_bytes per cell and notebook_output_bytes in all. Errors are
        always kept; a dropped stderr stream leaves a stderr note, so a test cell that wrote to
        stderr still reads as such."""
        if cell_index != self._out_cell_index:
            self._out_cell_index, self._out_cell = cell_index, 0
        if msg["msg_type"] == "error":
            return super().output(outs, msg, display_id, cell_index)
        size = _content_size(msg)
        if (self._out_cell + size <= self.cell_output_bytes
                and self._out_total + size <= self.notebook_output_bytes):
            self._out_cell += size
            self._out_total += size
            return super().output(outs, msg, display_id, cell_index)
        self._report["output_truncated"] = True
        room = min(self.cell_output_bytes - self._out_cell,
                   self.notebook_output_bytes - self._out_total)
        if msg["msg_type"] == "stream" and room > 0:  # keep the head of a long stream
            self._out_cell += room
            self._out_total += room
            msg = {**msg, "content": {**msg["content"], "text": msg["content"]["text"][:room]}}
            super().output(outs, msg, display_id, cell_index)
        name = msg["content"].get("name", "stdout") if msg["msg_type"] == "stream" else "stdout"
        note = f"\n[output truncated by the grader: more than {self.cell_output_bytes} bytes]\n"
        if not any(o.get("output_type") == "stream" and o.get("name") == name
                   and o.get("text") == note for o in outs):
            outs.append(NotebookNode(output_type="stream", name=name, text=note))
        return None

    def _probe_integrity(self) -> list[str] | None:
        """The kernel's own report from grader.tamper: a list of reasons ([] when clean), or
        None when the kernel gave no reply at all (still busy after a timeout)."""
        # The report is computed inside a cell run (the context the baseline was taken in), then
        # read back as a user expression.
        module = "__import__('grader.tamper', fromlist=['x'])"
        try:
            msg_id = self.kc.execute(f"{module}.record_report()", silent=True,
                                     store_history=False,
                                     user_expressions={"report": f"{module}.LAST_REPORT"})
            reply = self.wait_for_reply(msg_id)
        except Exception as e:  # noqa: BLE001 - no reply is "unknown", never fatal
            self.log.warning("integrity probe got no reply: %s", e)
            return None
        if reply is None:
            return None
        return _parse_probe(reply.get("content", {}))


def _parse_probe(content: dict) -> list[str]:
    """Reasons from the probe's execute_reply; a reply that is not a clean report is itself
    suspicious (the notebook broke the grader's own module or the way results come back)."""
    if content.get("status") != "ok":
        return [f"the integrity probe failed in the kernel ({content.get('ename', '?')})"]
    value = content.get("user_expressions", {}).get("report", {})
    try:
        reasons = json.loads(ast.literal_eval(value["data"]["text/plain"]))
    except (KeyError, TypeError, ValueError, SyntaxError):
        return ["the integrity probe's answer was unreadable"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        return ["the integrity probe's answer was unreadable"]
    return reasons


def _content_size(msg: dict) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    data = content.get("data", {})
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values())


def _mark_not_run(cell: NotebookNode) -> None:
    if cell.cell_type != "code":
        return
    cell.outputs = [NotebookNode(
        output_type="error", ename="KernelDied",
        evalue="the kernel died or was stopped before this cell could run",
        traceback=["KernelDied: the kernel died or was stopped (time or memory limit, crash) "
                   "before this cell could run"])]


def run_report(nb: NotebookNode) -> dict:
    """What SandboxedExecute recorded for an executed notebook ({} when it did not run)."""
    return dict(nb.metadata.get(RUN_METADATA_KEY, {}))


def run_flags(report: dict) -> list[str]:
    """Flags for grades.csv from a run report."""
    flags = []
    if report.get("watchdog") or report.get("cell_timeouts"):
        flags.append("timeout")
    if report.get("kernel_died") and not (report.get("watchdog")
                                          or report.get("kernel_stopped")):
        flags.append("kernel-died")
    if report.get("output_truncated"):
        flags.append("output-truncated")
    if report.get("tamper_runtime"):
        flags.append("tamper-suspected")
    return flags


class SandboxUnavailable(ValueError):
    """The sandbox cannot be set up here; the message says why and what to do."""


def require_sandbox() -> None:
    ok, why = sandbox_available()
    if not ok:
        raise SandboxUnavailable(
            f"cannot isolate the students' notebooks on this machine: {why}. Install Debian's "
            "bubblewrap (apt-get install bubblewrap), or pass --no-sandbox to grade without "
            "isolation (only for code you trust).")


def sandbox_flags(ctx) -> list[str]:
    """Flag check for grader.flags: timeout / kernel-died / output-truncated from the run
    report SandboxedExecute stored in the autograded notebook."""
    if not ctx.autograde_succeeded or not ctx.autograded_notebook.exists():
        return []
    import nbformat

    try:
        nb = nbformat.read(ctx.autograded_notebook, as_version=4)
    except Exception:  # noqa: BLE001 - execution_flags reports unreadable output
        return []
    return [f for f in run_flags(run_report(nb)) if f != "tamper-suspected"]


def configure(config, limits: Limits, sandbox: bool = True) -> None:
    """Point an nbgrader config at the sandboxed executor with these limits."""
    from nbgrader.converters import Autograde

    steps = [SandboxedExecute if step is Execute else step
             for step in Autograde.class_traits()["autograde_preprocessors"].default()]
    config.Autograde.autograde_preprocessors = steps
    config.Execute.timeout = limits.cell_timeout
    config.SandboxedExecute.cell_output_bytes = limits.cell_output_bytes
    config.SandboxedExecute.notebook_output_bytes = limits.notebook_output_bytes
    config.SandboxKernelManager.sandbox = sandbox
    config.SandboxKernelManager.notebook_timeout = limits.notebook_timeout
    config.SandboxKernelManager.memory_bytes = limits.memory_bytes
    config.SandboxKernelManager.max_processes = limits.max_processes
