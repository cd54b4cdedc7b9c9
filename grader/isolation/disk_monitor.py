"""How full a running sandbox's sized tmpfs are, read from outside (flag `disk-limit`).

The limits hold by themselves (bwrap sizes /tmp, /dev/shm and the scratch folder: ENOSPC
inside); bwrap cannot cap a tmpfs's inodes, so the monitor stops a sandbox past MAX_INODES, and
past a few sockets' worth in the runtime folder bound from the host."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from grader.isolation.limits import MAX_INODES, SCRATCH, SIZED_MOUNTS, Limits

MONITOR_SECONDS = 0.25  # how often the monitor reads the sandbox's tmpfs usage


class SandboxMonitor(threading.Thread):
    """Reads, MONITOR_SECONDS apart, how full the sandbox's sized tmpfs are (through
    /proc/<pid>/root, the sandbox's own view) and how much the runtime folder on the host
    holds. The limits hold by themselves (ENOSPC inside); this only reports that one was hit."""

    RUNTIME_ENTRIES, RUNTIME_BYTES = 64, 1024**2  # ipykernel makes ~6 sockets, no data

    def __init__(self, bwrap_pid: int, limits: Limits, runtime_dir: Path | None,
                 on_overflow=None):
        super().__init__(daemon=True)
        self.bwrap_pid, self.limits, self.runtime_dir = bwrap_pid, limits, runtime_dir
        self.on_overflow = on_overflow  # stops the sandbox
        self.full: set[str] = set()
        self.stopped = False  # it stopped the sandbox (a limit the tmpfs could not enforce)
        # not `_stop`: that is a method of Thread (join() and is_alive() call it)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(MONITOR_SECONDS):
            self.check()

    def stop(self) -> None:
        self._halt.set()

    def check(self) -> None:
        root = sandbox_root(self.bwrap_pid)
        over = []
        if root is not None:
            usage = mount_usage(root)
            self.full.update(full_mounts(usage))
            over = over_limit(usage, self.limits)  # only where the tmpfs could not be sized
        if self.runtime_dir is not None and runtime_overflow(self.runtime_dir):
            over.append("runtime folder")
        if over:
            self.full.update(over)
            self.stopped = True
            if self.on_overflow is not None:
                self.on_overflow()


def sandbox_root(bwrap_pid: int) -> Path | None:
    """/proc/<child>/root: the filesystem as the sandbox sees it (bwrap's first child runs in
    the new mount namespace; the launched bwrap stays outside)."""
    try:
        children = Path(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children").read_text().split()
    except OSError:
        return None
    return Path(f"/proc/{children[0]}/root") if children else None


def mount_usage(root: Path) -> dict[str, os.statvfs_result]:
    """statvfs of each of SIZED_MOUNTS under `root` that can be read (one look per check)."""
    usage = {}
    for mount in SIZED_MOUNTS:
        try:
            usage[mount] = os.statvfs(root / mount.lstrip("/"))
        except OSError:
            continue
    return usage


def full_mounts(usage: dict[str, os.statvfs_result]) -> list[str]:
    """Which mounts have (almost) no space left. Before the mount script ran they are bwrap's
    own unsized tmpfs: large, so never reported."""
    full = []
    for mount, st in usage.items():
        size = st.f_blocks * st.f_frsize
        if size and st.f_bavail * st.f_frsize < max(size // 50, 64 * 1024):
            full.append(mount)
    return full


def over_limit(usage: dict[str, os.statvfs_result], limits: Limits) -> list[str]:
    """Mounts holding more inodes than MAX_INODES (bwrap cannot set nr_inodes), or more bytes
    than their size (only where a tmpfs was not sized)."""
    size = {"/tmp": limits.tmpfs_bytes, "/dev/shm": limits.tmpfs_bytes,
            SCRATCH: limits.disk_bytes}
    return [mount for mount, st in usage.items()
            if (st.f_blocks - st.f_bfree) * st.f_frsize > size[mount]
            or st.f_files - st.f_ffree > MAX_INODES]


def runtime_overflow(runtime_dir: Path) -> bool:
    """True when the runtime folder (bound from the host) holds more than sockets would."""
    count, size = 0, 0
    for dirpath, dirnames, filenames in os.walk(runtime_dir, followlinks=False):
        for name in dirnames + filenames:
            count += 1
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
            if (count > SandboxMonitor.RUNTIME_ENTRIES
                    or size > SandboxMonitor.RUNTIME_BYTES):
                return True
    return False
