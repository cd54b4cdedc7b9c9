"""Resource limits for one graded notebook (the defaults are generous: the exercises need far less).

Used by grader.isolation.sandbox (wall clock, rlimits) and by the autograde command line
(--cell-timeout, --notebook-timeout, --memory-gb). Every limit is checked when a Limits is built, so
a bad value from the command line fails early with a clear message instead of starting a broken
kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2
# Inside the sandbox: the scratch folder ($HOME and the working folder) and the tmpfs mounts
# sized from these limits (tmpfs_bytes, disk_bytes); bwrap cannot size inodes: the monitor does.
SCRATCH = "/home/student"
SIZED_MOUNTS = ("/tmp", "/dev/shm", SCRATCH)
MAX_INODES = 65536  # per tmpfs: a million empty files are RAM too
# The executed notebook's metadata key where grader.isolation.sandbox.SandboxedExecute records its
# run report: which of these limits the run reached (timeouts, output cut, disk full, a dead
# kernel). grader.records.flags turns it into flags.
RUN_METADATA_KEY = "grader_run"


@dataclass(frozen=True)
class Limits:
    cell_timeout: int = 120  # seconds one cell may run before it is interrupted
    notebook_timeout: int = 900  # seconds the whole notebook may run before its kernel is killed
    memory_bytes: int = 4 * GIB  # address space per process (RLIMIT_AS)
    max_processes: int = 512  # tasks (processes + threads) of the sandbox's user (RLIMIT_NPROC)
    file_size_bytes: int = 1 * GIB  # largest file the notebook may write (RLIMIT_FSIZE)
    open_files: int = 1024  # RLIMIT_NOFILE
    cell_output_bytes: int = 200_000  # output kept per cell; the rest is dropped
    notebook_output_bytes: int = 2 * MIB  # output kept per notebook; the rest is dropped
    outputs_per_cell: int = 100  # outputs kept per cell (each display() call is one)
    notebook_bytes: int = 8 * MIB  # the executed notebook as written (sources + outputs)
    # Writable space inside the sandbox, each a sized tmpfs: /tmp and /dev/shm (tmpfs_bytes
    # each) and the scratch folder the notebook runs in (disk_bytes). Their pages are RAM that
    # RLIMIT_AS does not count, so together they take at most a quarter of memory_bytes
    # (default: a twelfth of it each; None = that default).
    tmpfs_bytes: int | None = None
    disk_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("tmpfs_bytes", "disk_bytes"):  # frozen: set the derived defaults once
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.memory_bytes // 12)
        for name, minimum in (("cell_timeout", 1), ("notebook_timeout", 1),
                              ("memory_bytes", 256 * MIB), ("max_processes", 16),
                              ("file_size_bytes", MIB), ("open_files", 64),
                              ("cell_output_bytes", 1000), ("notebook_output_bytes", 1000),
                              ("outputs_per_cell", 1), ("notebook_bytes", 10_000),
                              ("tmpfs_bytes", MIB), ("disk_bytes", MIB)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"Limits.{name} must be an integer >= {minimum}, got {value!r}")
        if 2 * self.tmpfs_bytes + self.disk_bytes > self.memory_bytes // 4:
            raise ValueError("Limits: /tmp, /dev/shm and the scratch folder (2 * tmpfs_bytes + "
                             "disk_bytes) must fit in a quarter of memory_bytes")

    @property
    def cpu_seconds(self) -> int:
        """CPU-time backstop (RLIMIT_CPU): the wall clock is the real limit; this catches a
        process that escaped the watchdog. Two cores busy for the whole notebook, plus slack."""
        return 2 * self.notebook_timeout + 60

    def rlimit_args(self) -> list[str]:
        """Arguments for util-linux `prlimit` (soft=hard, so the notebook cannot raise them)."""
        return [f"--as={self.memory_bytes}", f"--nproc={self.max_processes}",
                f"--cpu={self.cpu_seconds}", f"--fsize={self.file_size_bytes}",
                f"--nofile={self.open_files}", "--core=0"]
