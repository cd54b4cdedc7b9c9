"""Run each submission's kernel in a sandbox: no network, a private filesystem view, rlimits.

How a graded kernel is started (``SandboxKernelManager``)::

    bwrap  --unshare-pid/net/ipc/uts --die-with-parent --new-session   (Debian's bubblewrap)
           read-only: /usr, the Python install, the venv, and of the grader package only
                      grader/__init__.py, inside/__init__.py and inside/tamper.py
                      (KERNEL_GRADER_FILES: never grader/checks; nor the course library)
           writable:  a runtime folder with the IPC sockets (locked once the kernel is up)
           sized tmpfs: /tmp, /dev/shm and the scratch folder /home/student ($HOME and the
                      working folder); nothing else of the machine (no solutions/, gradebook,
                      nbgrader's folders, other submissions, instructor's home) exists inside
           (bwrap --size: /tmp and /dev/shm Limits.tmpfs_bytes each, scratch disk_bytes)
      setpriv --reuid U    (only when the grader runs as root: rlimits do not bind root)
        prlimit --as --nproc --cpu --fsize --nofile --core=0
          python -c "$KERNEL_BOOT" -f kernel.json    (grader.inside.tamper.start_kernel)

Files are data: the scratch folder is a tmpfs inside the sandbox, so whatever the notebook
leaves there (links, FIFOs, huge files) vanishes with it; only the executed notebook comes back,
as messages, and nbgrader writes it into a folder the kernel never saw. A monitor thread reads
the sandbox's tmpfs usage through /proc/<pid>/root and reports a full one (flag `disk-limit`).

The kernel has no network, so it is reached over jupyter_client's IPC transport (Unix sockets in
the runtime folder). A watchdog thread kills the whole sandbox when the notebook's wall-clock
budget is spent; the PID namespace guarantees that every process the notebook started dies with
it. ``SandboxedExecute`` is nbgrader's Execute preprocessor with that kernel manager, output
capping, graceful handling of a dead kernel, and a record of what happened in the notebook's
metadata (``grader_run``), which the autograde command turns into flags.

Beside this module: ``grader.isolation.uids`` (spare uids as root, their leases and clean-up),
``grader.isolation.disk_monitor`` (the tmpfs monitor) and ``grader.isolation.output_caps`` (bounds
on what an executed notebook keeps).
"""

from __future__ import annotations

import ast
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

from grader.bridge.course import LIBRARY_PACKAGE, library_visible_to_answers
from grader.isolation.disk_monitor import SandboxMonitor
from grader.isolation.limits import RUN_METADATA_KEY, SCRATCH, Limits
from grader.isolation.output_caps import cap_notebook, content_size, mark_not_run, shorten_error
from grader.isolation.uids import UID_BASE, UID_SLOTS, UidLease, chown_tree

# The grader's settings for kernels pass through; nothing else of the instructor's environment
# (tokens, database passwords, NBGRADER_* that tell a notebook it is being graded) reaches it.
FORWARDED_ENV = {"PYTHONWARNINGS", "MPLBACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "PYTHONHASHSEED", "TZ"}
KERNEL_BOOT = "import grader.inside.tamper; grader.inside.tamper.start_kernel()"
# What of grader/ a graded kernel sees: what KERNEL_BOOT runs (grader.inside.tamper, the integrity
# baseline, and the package's __init__, which it imports) and grader.inside.instruments, which it
# installs as torch loads (the kernel serves the trusted verdict after the notebook:
# SandboxedExecute.verdict_socket). Nothing else of the package exists inside: no hidden check,
# reference or grader path can be read or imported by the notebook (its test cells run without
# their hidden tests: grader.bridge.hidden_tests).
KERNEL_GRADER_FILES = ("__init__.py", "inside/__init__.py", "inside/tamper.py",
                       "inside/instruments.py")


# --------------------------------------------------------------------------- availability


def _package_dir(name: str) -> Path:
    """The folder of a top-level package, found without importing it (resnet_course would
    import torch: seconds, in every nbgrader child). ImportError when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"no package {name}")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def readonly_paths(grader: bool = True) -> list[Path]:
    """What a sandbox may read besides /usr: Python, the venv, the whole grader package unless
    `grader` is False (sandboxes that run student code see only SandboxSpec.grader_files of
    it), and the course library only where grader.bridge.course lets answers use it (today it does
    not)."""
    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.prefix),
             Path(sys.executable).resolve().parent]
    if grader:
        paths.append(_package_dir("grader"))
    if library_visible_to_answers():  # grader.bridge.course: answers may not use the library
        paths.append(_package_dir(LIBRARY_PACKAGE))
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

    # The runtime folder is bound from the host: writable where the process makes its sockets
    # there (the kernel), read-only where it needs none (the verdict's subject talks over
    # pipes), so that every place it can write is a sized tmpfs.
    runtime_writable = True

    def __init__(self, workdir: Path | None, runtime_dir: Path, limits: Limits, uid: int | None,
                 extra_readonly: list[Path] | None = None, host_proc: bool = False,
                 grader_files: tuple[str, ...] | None = ()):
        # workdir None (graded kernels): the process works in the scratch tmpfs SCRATCH. A folder
        # given here is bound writable and becomes the working folder instead (its owner must
        # treat what comes back as data).
        self.workdir = None if workdir is None else Path(workdir).resolve()
        self.runtime_dir = Path(runtime_dir).resolve()
        self.limits = limits
        # None: not root, so bwrap maps the caller's uid in a user namespace. 0: stays root with
        # only CAP_SETUID and CAP_SETGID (grader.bridge.nbgrader_steps's fork server, whose children
        # become leased users). Else: the leased user id, set by setpriv.
        self.uid = uid
        self.extra_readonly = [Path(p).resolve() for p in (extra_readonly or [])]
        # host_proc: the host's PID namespace and /proc (no overmounts), so that a sandbox can
        # start inside this one (nbgrader's child starts the kernel's): a new /proc, which bwrap
        # partly overmounts read-only, is "too revealing" for a nested user namespace's mount
        self.host_proc = host_proc
        # What of the grader package exists inside (paths under grader/): None, all of it (only
        # nbgrader's fork server, which runs no student code); () nothing (the verdict's
        # subject, sent its own source as text); the kernel: KERNEL_GRADER_FILES.
        self.grader_files = grader_files

    def _grader_mounts(self, readonly: list[Path]) -> list[tuple[Path, str]]:
        """The grader_files of the grader package, read-only. Where another read-only mount
        already shows the package (grader installed into the venv, or an extra path above it),
        an empty tmpfs covers it first, so that only those files show through."""
        if self.grader_files is None:
            return []
        package = _package_dir("grader")
        files = [(package / name, "--ro-bind") for name in self.grader_files]
        if not any(package.is_relative_to(p) for p in readonly):
            return files
        return [(package, "--tmpfs"), *files, (package, "--remount-ro")]

    def env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.prefix) / "bin")
        return {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": "/home/student",
                "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
                "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JPY_PARENT_PID": "0",
                **{k: v for k, v in os.environ.items() if k in FORWARDED_ENV}}

    def argv(self, cmd: list[str]) -> list[str]:
        a = ["bwrap", *([] if self.host_proc else ["--unshare-pid"]), "--unshare-net",
             "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent",
             "--new-session", "--hostname", "sandbox"]
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
        # sized tmpfs (their pages are RAM that RLIMIT_AS does not count: see Limits)
        tmpfs, disk = str(self.limits.tmpfs_bytes), str(self.limits.disk_bytes)
        a += ["--bind", "/proc", "/proc"] if self.host_proc else ["--proc", "/proc"]
        a += ["--dev", "/dev",
              "--perms", "1777", "--size", tmpfs, "--tmpfs", "/dev/shm",  # DataLoader workers
              "--perms", "1777", "--size", tmpfs, "--tmpfs", "/tmp",
              "--perms", "0755", "--dir", "/home",
              "--perms", "0777", "--size", disk, "--tmpfs", SCRATCH]
        readonly = readonly_paths(grader=self.grader_files is None) + self.extra_readonly
        mounts = [(p, "--ro-bind") for p in readonly]
        mounts += self._grader_mounts(readonly)
        mounts += [(self.runtime_dir, "--bind" if self.runtime_writable else "--ro-bind")]
        if self.workdir is not None:
            mounts += [(self.workdir, "--bind")]
        made: set[Path] = {Path("/"), Path("/tmp"), Path("/home")}
        for path, how in mounts:  # parents readable by the sandbox user (bwrap makes them 0700)
            for parent in reversed(path.parents):
                if parent not in made and not _under_system_dir(parent) and not any(
                        parent.is_relative_to(p) for p in readonly):
                    a += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            if how == "--tmpfs":  # an empty, read-only folder over what a mount above showed
                a += ["--perms", "0755", "--size", "65536", "--tmpfs", str(path)]
            elif how == "--remount-ro":
                a += ["--remount-ro", str(path)]
            else:
                a += [how, str(path), str(path)]
            made.add(path)
        a += ["--chdir", str(self.workdir or SCRATCH), "--clearenv"]
        for key, value in self.env().items():
            a += ["--setenv", key, value]
        a += ["--"]
        if self.uid:
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
        if spec.workdir is not None:
            chown_tree(spec.workdir, spec.uid)
        chown_tree(spec.runtime_dir, spec.uid)


# --------------------------------------------------------------------------- kernel manager


class Watchdog:
    """Calls `action` once, when its deadline passes; the deadline can be moved without a new
    thread (a notebook may have used up its user's processes, which the thread of nbgrader's
    child, run as that user, counts against)."""

    def __init__(self, seconds: float, action):
        self.deadline = time.monotonic() + seconds
        self.action = action
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._cancelled.wait(min(1.0, max(0.0, self.deadline - time.monotonic()))):
            if time.monotonic() >= self.deadline:
                self.action()
                return

    def restart(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def cancel(self) -> None:
        self._cancelled.set()


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
        self.serving_verdict = False  # the notebook has run; the kernel serves the verdict
        self._watchdog: Watchdog | None = None
        self._lease: UidLease | None = None
        self._runtime_dir: Path | None = None
        self._scratch: Path | None = None  # --no-sandbox only: a temporary working folder
        self._monitor: SandboxMonitor | None = None

    tmpfs_bytes = Integer(0, help="Size of /tmp and /dev/shm (0: Limits' default)"
                          ).tag(config=True)
    disk_bytes = Integer(0, help="Size of the scratch folder (0: Limits' default)"
                         ).tag(config=True)

    def limits(self) -> Limits:
        return Limits(notebook_timeout=self.notebook_timeout, memory_bytes=self.memory_bytes,
                      max_processes=self.max_processes, tmpfs_bytes=self.tmpfs_bytes or None,
                      disk_bytes=self.disk_bytes or None)

    def check_disk(self) -> None:
        """A look at the tmpfs now (the monitor polls; a notebook can fill one between polls
        and end before the next)."""
        if self._monitor is not None:
            self._monitor.check()

    @property
    def stopped_by_monitor(self) -> bool:
        return self._monitor is not None and self._monitor.stopped

    @property
    def full_mounts(self) -> list[str]:
        """Writable places inside the sandbox that the notebook filled (see SandboxMonitor)."""
        return [] if self._monitor is None else sorted(self._monitor.full)

    async def _async_pre_start_kernel(self, **kw):
        self._lease = UidLease() if self.sandbox and os.geteuid() == 0 else None
        tag = "" if self._lease is None else f"{self._lease.uid}-"
        self._runtime_dir = Path(tempfile.mkdtemp(prefix=f"gsb-{tag}"))  # short: socket path
        self.connection_file = str(self._runtime_dir / "kernel.json")
        self.ip = str(self._runtime_dir / "k")
        # nbclient asks for the notebook's folder (nbgrader's autograded/<s>/<id>/) as cwd. The
        # kernel never works there: the sandbox has its scratch tmpfs; without a sandbox it gets
        # an empty temporary folder, deleted afterwards. Nothing the kernel leaves is kept.
        # (The sandbox's outer bwrap process, which runs no student code and writes nothing,
        # keeps the given cwd, so `pids_under(DIR)` finds a sandbox that is still alive.)
        if not self.sandbox:
            self._scratch = Path(tempfile.mkdtemp(prefix="gsb-scratch-"))
            kw["cwd"] = str(self._scratch)
        kw.setdefault("cwd", str(self._runtime_dir))
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        # kernel_cmd is [python, -m, ipykernel_launcher, -f, FILE, *extra]: keep the arguments,
        # start it through grader.inside.tamper, which records the untouched interpreter first.
        args = kernel_cmd[kernel_cmd.index("-f"):]
        cmd = [sys.executable, "-c", KERNEL_BOOT, *args]
        if self.sandbox:
            spec = SandboxSpec(None, self._runtime_dir, self.limits(),
                               None if self._lease is None else self._lease.uid,
                               [Path(p) for p in self.extra_readonly],
                               grader_files=KERNEL_GRADER_FILES)
            _prepare_ownership(spec)
            cmd = spec.argv(cmd)
            kw["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        # The kernel's own fd 1/2 (C-level prints, crash messages) must not flood the grader.
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        return cmd, kw

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        if self.sandbox and process is not None:
            self._monitor = SandboxMonitor(process.pid, self.limits(), self._runtime_dir,
                                           on_overflow=self.kill_sandbox)
            self._monitor.start()
        self._watchdog = Watchdog(self.notebook_timeout, self._kill_from_watchdog)

    def _kill_from_watchdog(self) -> None:
        if not self.serving_verdict:  # the notebook ran past its time (flag `timeout`)
            self.watchdog_fired = True
        self.kill_sandbox()

    def restart_watchdog(self, seconds: float) -> None:
        """The kernel may live `seconds` more from now (the notebook has run; it now serves the
        trusted verdict, which has a budget of its own: SandboxedExecute.serve_verdict)."""
        self.serving_verdict = True
        if self._watchdog is not None:
            self._watchdog.restart(seconds)

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

    def lock_runtime_dir(self) -> None:
        """Once the kernel has bound its sockets it needs no new files in the runtime folder
        (bound on the host, so not covered by the disk limit): as root, take it back."""
        if self._lease is None or self._runtime_dir is None:
            return  # not root: the monitor watches the folder's size instead
        for entry in os.scandir(self._runtime_dir):
            os.chown(entry.path, 0, 0, follow_symlinks=False)
        os.chown(self._runtime_dir, 0, 0)
        os.chmod(self._runtime_dir, 0o755)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._monitor is not None:
            self._monitor.check()  # a last look before the sandbox (and its tmpfs) goes
            self._monitor.stop()
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
            self._lease = None
        for folder in (self._runtime_dir, self._scratch):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)  # rmtree never follows links
        self._runtime_dir = self._scratch = None


# --------------------------------------------------------------------------- preprocessor


class SandboxedExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel, capped output and a run report.

    A dead kernel (segfault, os._exit, the memory limit, the notebook watchdog) does not abort
    the notebook: the cells that ran keep their outputs, every later cell gets an error output,
    so nbgrader scores what could not run as 0 and grading goes on.
    """

    cell_output_bytes = Integer(Limits.cell_output_bytes).tag(config=True)
    outputs_per_cell = Integer(Limits.outputs_per_cell).tag(config=True)
    notebook_bytes = Integer(Limits.notebook_bytes, help="The executed notebook as written"
                             ).tag(config=True)
    notebook_output_bytes = Integer(Limits.notebook_output_bytes).tag(config=True)
    tamper_probe = Bool(True, help="Ask the kernel for its integrity report at the end"
                        ).tag(config=True)
    verdict_socket = Unicode("", help="After the notebook, the kernel serves the trusted "
                             "verdict's requests on this Unix socket (grader.judging.verdict."
                             "KernelChannel) until the grader hangs up; empty: it does not"
                             ).tag(config=True)
    serve_timeout = Integer(Limits.notebook_timeout, help="Seconds the kernel may serve the "
                            "verdict before it is killed").tag(config=True)

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
        self._out_count = 0
        self._serving = False
        started = time.monotonic()
        with self.setup_kernel():
            manager = self.km
            info = self.wait_for_reply(self.kc.kernel_info())
            self.nb.metadata["language_info"] = info["content"]["language_info"]
            if hasattr(manager, "lock_runtime_dir"):
                manager.lock_runtime_dir()  # sockets bound; no student code has run yet
            dead = False
            for index, cell in enumerate(self.nb.cells):
                if dead:
                    mark_not_run(cell)
                    continue
                try:
                    self.preprocess_cell(cell, resources, index)
                except DeadKernelError:
                    dead = True
                    mark_not_run(cell)
                except CellTimeoutError:  # interrupted but silent: the kernel is wedged
                    self._report["cell_timeouts"] += 1
                    self._report["kernel_stopped"] = True
                    manager.kill_sandbox() if hasattr(manager, "kill_sandbox") else None
                    dead = True
                    mark_not_run(cell)
            if hasattr(manager, "check_disk"):
                manager.check_disk()  # the kernel is still up: its tmpfs still exist
            if not dead and self.tamper_probe:
                self._report["tamper_runtime"] = self._probe_integrity()
            if not dead and self.verdict_socket:
                self.serve_verdict(manager)
        self._report["kernel_died"] = dead
        self._report["disk_full"] = list(getattr(manager, "full_mounts", []))
        if getattr(manager, "stopped_by_monitor", False):
            self._report["kernel_stopped"] = True  # a limit, reported as disk-limit
        if cap_notebook(self.nb, self.notebook_bytes):
            self._report["output_truncated"] = True
        self._report["watchdog"] = bool(getattr(manager, "watchdog_fired", False))
        self._report["sandboxed"] = bool(getattr(manager, "sandbox", False))
        self._report["seconds"] = round(time.monotonic() - started, 1)
        self.nb.metadata[RUN_METADATA_KEY] = self._report
        self.set_widgets_metadata()
        return self.nb, self.resources

    def serve_verdict(self, manager) -> None:
        """The notebook has run: the kernel now answers the trusted verdict's requests (grader.
        subject's Server on the notebook's own namespace, its source sent here as a cell the
        notebook never shows) over the grader's private socket, until the grader hangs up. So
        student code runs once per submission. What happens here is no part of the notebook's
        run: no output is kept, no timeout or death is reported (a kernel the verdict killed
        for not answering is the verdict's business), and it has a budget of its own."""
        if hasattr(manager, "restart_watchdog"):
            manager.restart_watchdog(self.serve_timeout)
        cell = NotebookNode(cell_type="code", id="grader-verdict", metadata={}, outputs=[],
                            execution_count=None, source=serve_source(self.verdict_socket))
        saved, self.timeout, self._serving = self.timeout, self.serve_timeout, True
        self.nb.cells.append(cell)  # nbclient puts an executed cell back by its index
        try:
            self.execute_cell(cell, len(self.nb.cells) - 1, store_history=False)
            self._report["served_verdict"] = True
        except (DeadKernelError, CellTimeoutError) as e:
            self._report["served_verdict"] = type(e).__name__
            if hasattr(manager, "kill_sandbox"):
                manager.kill_sandbox()
        except Exception as e:  # noqa: BLE001 - the verdict judges without it (a fresh subject)
            self._report["served_verdict"] = type(e).__name__
        finally:
            del self.nb.cells[-1]  # no part of the notebook
            self.timeout, self._serving = saved, False

    async def _async_handle_timeout(self, timeout, cell=None):
        if not self._serving:
            self._report["cell_timeouts"] += 1
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most outputs_per_cell outputs and cell_output_bytes per cell, and
        notebook_output_bytes in all, counting every field of every output type (text, data,
        metadata, error name/value/traceback). An error is always kept, shortened, so a
        failing test still fails; a dropped stderr stream leaves a stderr note, so a test cell
        that wrote to stderr still reads as such."""
        if self._serving:  # what student code shows while it serves the verdict: not kept
            return None
        if cell_index != self._out_cell_index:
            self._out_cell_index, self._out_cell, self._out_count = cell_index, 0, 0
        room = min(self.cell_output_bytes - self._out_cell,
                   self.notebook_output_bytes - self._out_total)
        if msg["msg_type"] == "error":
            full = content_size(msg)
            msg, size = shorten_error(msg, max(room, 4000))
            self._count(size, cut=size < full)
            return super().output(outs, msg, display_id, cell_index)
        size = content_size(msg)
        if size <= room and self._out_count < self.outputs_per_cell:
            self._count(size)
            return super().output(outs, msg, display_id, cell_index)
        self._report["output_truncated"] = True
        if (msg["msg_type"] == "stream" and room > 0
                and self._out_count < self.outputs_per_cell):  # keep the head of a long stream
            self._count(room)
            msg = {**msg, "content": {"name": str(msg["content"].get("name", "stdout")),
                                      "text": str(msg["content"].get("text", ""))[:room]}}
            super().output(outs, msg, display_id, cell_index)
        name = msg["content"].get("name", "stdout") if msg["msg_type"] == "stream" else "stdout"
        name = name if name in ("stdout", "stderr") else "stdout"
        note = f"\n[output truncated by the grader: more than {self.cell_output_bytes} bytes]\n"
        if not any(o.get("output_type") == "stream" and o.get("name") == name
                   and o.get("text") == note for o in outs):
            outs.append(NotebookNode(output_type="stream", name=name, text=note))
        return None

    def _count(self, size: int, cut: bool = False) -> None:
        self._out_cell += size
        self._out_total += size
        self._out_count += 1
        if cut:
            self._report["output_truncated"] = True

    def _update_display_id(self, display_id, msg):
        """update_display(...) rewrites every output shown with that id (in any cell): it costs
        its size once per target, and is dropped when that does not fit."""
        targets = sum(len(v) for v in self._display_id_map.get(display_id, {}).values())
        cost = content_size(msg) * max(targets, 1)
        if cost > min(self.cell_output_bytes, self.notebook_output_bytes - self._out_total):
            self._report["output_truncated"] = True
            return None
        self._out_total += cost
        return super()._update_display_id(display_id, msg)

    def handle_comm_msg(self, outs, msg, cell_index):
        """Widget messages are ignored: grading needs no widgets, and their state (and the
        Output widget's captured outputs) would bypass every cap."""
        return None

    def _probe_integrity(self) -> list[str] | None:
        """The kernel's own report from grader.inside.tamper: a list of reasons ([] when clean), or
        None when the kernel gave no reply at all (still busy after a timeout)."""
        # The report is computed inside a cell run (the context the baseline was taken in), then
        # read back as a user expression.
        module = "__import__('grader.inside.tamper', fromlist=['x'])"
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


class SandboxUnavailable(ValueError):
    """The sandbox cannot be set up here; the message says why and what to do."""


def require_sandbox() -> None:
    ok, why = sandbox_available()
    if not ok:
        raise SandboxUnavailable(
            f"cannot isolate the students' notebooks on this machine: {why}. Install Debian's "
            "bubblewrap (apt-get install bubblewrap), or pass --no-sandbox to grade without "
            "isolation (only for code you trust).")


def serve_source(socket_path: str) -> str:
    """The cell a graded kernel runs after the notebook to serve the trusted verdict: takes the
    grader.inside.instruments the kernel installed as torch loaded
    (grader.inside.tamper._install_instruments; without them it does not serve, and the verdict
    starts a fresh subject), installs grader/inside/wire.py's source (sent as text, like the
    verdict's fresh subjects get it) and runs grader/inside/subject.py's serve_kernel on the
    notebook's namespace, all in a namespace of its own (nothing is added to the student's)."""
    folder = Path(__file__).resolve().parents[1]
    wire_source = (folder / "inside/wire.py").read_text(encoding="utf-8")
    subject_source = (folder / "inside/subject.py").read_text(encoding="utf-8")
    boot = ("import sys, types\n"
            "import torch  # the kernel installs grader.inside.instruments as torch loads\n"
            "if 'grader_instruments' not in sys.modules:\n"
            "    raise RuntimeError('torch loaded without the instruments: no verdict here')\n"
            "wire = types.ModuleType('grader_wire')\n"
            f"exec(compile({wire_source!r}, 'inside/wire.py', 'exec'), wire.__dict__)\n"
            "sys.modules['grader_wire'] = wire\n"
            "subject = {'__name__': 'grader_subject'}\n"
            f"exec(compile({subject_source!r}, 'inside/subject.py', 'exec'), subject)\n"
            f"subject['serve_kernel']({socket_path!r}, get_ipython().user_ns)\n")
    return f"exec(compile({boot!r}, '<grader>', 'exec'), {{'__name__': 'grader_serve'}})"
