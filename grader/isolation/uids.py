"""Spare user ids for sandboxes and nbgrader's children when the grader runs as root, and the
hygiene around them: one lease (flock) per running sandbox, every process of a released uid
killed, trees handed over without following links."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

UID_BASE, UID_SLOTS = 61000, 1000  # uids when grading as root (one per sandbox or nbgrader child)
# Leases are taken only as root. One fixed folder in /run (root-only, not $TMPDIR: two graders
# with different TMPDIRs must still see each other's leases; not /tmp, where another user
# could create it first, as a link to anywhere).
LOCK_DIR = Path("/run/grader-sandbox-uids")


def chown_tree(root: Path, uid: int) -> None:
    """chown without following links: the notebook may have left symlinks to anything."""
    os.chown(root, uid, uid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            try:
                os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
            except FileNotFoundError:
                pass


class UidLease:
    """A sandbox user id held (flock) for one kernel's life, so concurrent sandboxes never share
    one: RLIMIT_NPROC counts per user, and one fork bomb must not starve another job's kernel."""

    def __init__(self, lock_dir: Path = LOCK_DIR) -> None:
        _own_folder(lock_dir)
        start = os.getpid() % (UID_SLOTS - 1)
        for k in range(UID_SLOTS - 1):
            uid = UID_BASE + (start + k) % (UID_SLOTS - 1)
            fd = os.open(lock_dir / str(uid), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
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


def _own_folder(folder: Path) -> None:
    """Create `folder` (0700) if missing; refuse one that is a link, or that another user owns
    or can write to (its lock files would not be ours alone)."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise RuntimeError(f"{folder.parent} is missing: the sandbox user ids' leases are kept "
                           f"in {folder}") from None
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise RuntimeError(f"{folder} must be a folder of this user's that no one else can "
                           "write to (it holds the sandbox user ids' leases)")


def user_processes(uid: int) -> list[int]:
    """Pids of live processes whose real uid is `uid` (read from /proc). A zombie is not live:
    it has exited and only its exit status is left; whoever reaps it (here often the
    container's init, which does so in its own time) frees the pid."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and _real_uid(entry) == uid and not is_zombie(int(entry))]


def _real_uid(pid: str) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in status.splitlines()
                 if line.startswith("Uid:")), None)


def is_zombie(pid: int) -> bool:
    """The process has exited (its exit status not yet collected), or is gone altogether."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


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
