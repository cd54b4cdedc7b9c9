"""Resource limits for one graded notebook (the defaults are generous: the exercises need far less).

Used by grader.sandbox (wall clock, rlimits) and by the autograde command line (--cell-timeout,
--notebook-timeout, --memory-gb). Every limit is checked when a Limits is built, so a bad value
from the command line fails early with a clear message instead of starting a broken kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


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

    def __post_init__(self) -> None:
        for name, minimum in (("cell_timeout", 1), ("notebook_timeout", 1),
                              ("memory_bytes", 256 * MIB), ("max_processes", 16),
                              ("file_size_bytes", MIB), ("open_files", 64),
                              ("cell_output_bytes", 1000), ("notebook_output_bytes", 1000)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"Limits.{name} must be an integer >= {minimum}, got {value!r}")

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
