"""grader/isolation/disk_monitor.py: how full a sandbox's sized tmpfs are, read from outside,
and when the monitor stops a sandbox. statvfs results are made up here; the monitor on a real
sandbox that fills its disk is in tests/grader/test_hostile_files.py."""

import os
import subprocess
import threading

from grader.isolation import disk_monitor
from grader.isolation.disk_monitor import (
    SandboxMonitor,
    full_mounts,
    over_limit,
    runtime_overflow,
    sandbox_root,
)
from grader.isolation.limits import MAX_INODES, MIB, SCRATCH, Limits

BLOCK = 4096


def statvfs(blocks: int, free: int, files: int = 1000, ffree: int = 900) -> os.statvfs_result:
    # f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail f_flag f_namemax
    return os.statvfs_result((BLOCK, BLOCK, blocks, free, free, files, ffree, ffree, 0, 255))


def test_full_mounts():
    usage = {"/tmp": statvfs(1000, 1), "/dev/shm": statvfs(1000, 500),
             SCRATCH: statvfs(0, 0)}  # size 0: not measured
    assert full_mounts(usage) == ["/tmp"]


def test_over_limit_by_bytes_or_inodes():
    limits = Limits(memory_bytes=1024 * MIB, tmpfs_bytes=4 * MIB, disk_bytes=8 * MIB)
    usage = {
        "/tmp": statvfs(10_000, 10_000 - (4 * MIB // BLOCK) - 1),  # one block over 4 MiB
        "/dev/shm": statvfs(10_000, 10_000 - 4 * MIB // BLOCK),  # exactly at the size: fine
        SCRATCH: statvfs(10_000, 10_000, files=MAX_INODES + 10, ffree=9),  # one inode over
    }
    assert over_limit(usage, limits) == ["/tmp", SCRATCH]


def test_runtime_overflow(tmp_path):
    for i in range(SandboxMonitor.RUNTIME_ENTRIES):
        (tmp_path / f"s{i}").touch()
    assert not runtime_overflow(tmp_path)
    (tmp_path / "one-more").touch()
    assert runtime_overflow(tmp_path)
    (big := tmp_path / "big").mkdir()
    (big / "data").write_bytes(b"x" * (SandboxMonitor.RUNTIME_BYTES + 1))
    assert runtime_overflow(big)


def test_sandbox_root_of_a_process_without_children_or_gone():
    # a process of our own that starts none (the test's worker may have children of other
    # tests' fixtures still running, or adopted orphans)
    childless = subprocess.Popen(["sleep", "30"])
    try:
        assert sandbox_root(childless.pid) is None
    finally:
        childless.kill()
        childless.wait()
    assert sandbox_root(2**22 + 12345) is None  # no such process


def test_check_stops_the_sandbox_when_the_runtime_folder_overflows(tmp_path, monkeypatch):
    stopped = threading.Event()
    monkeypatch.setattr(disk_monitor, "sandbox_root", lambda pid: None)
    monitor = SandboxMonitor(123, Limits(), tmp_path, on_overflow=stopped.set)
    monitor.check()
    assert not monitor.stopped and monitor.full == set()
    (tmp_path / "data").write_bytes(b"x" * (SandboxMonitor.RUNTIME_BYTES + 1))
    monitor.check()
    assert monitor.stopped and stopped.is_set() and monitor.full == {"runtime folder"}


def test_check_reports_full_mounts_without_stopping(tmp_path, monkeypatch):
    monkeypatch.setattr(disk_monitor, "sandbox_root", lambda pid: tmp_path)
    monkeypatch.setattr(disk_monitor, "mount_usage", lambda root: {"/tmp": statvfs(1000, 1)})
    monitor = SandboxMonitor(123, Limits(), None, on_overflow=lambda: None)
    monitor.check()
    assert monitor.full == {"/tmp"} and not monitor.stopped  # ENOSPC inside holds the limit


def test_the_thread_checks_until_stopped(monkeypatch):
    checked = threading.Event()
    monkeypatch.setattr(disk_monitor, "MONITOR_SECONDS", 0.01)
    monitor = SandboxMonitor(123, Limits(), None)
    monkeypatch.setattr(monitor, "check", checked.set)
    monitor.start()
    assert checked.wait(5)
    monitor.stop()
    monitor.join(5)
    assert not monitor.is_alive()
