"""grader/isolation/uids.py: spare user ids for sandboxes when grading as root (one lease per
running sandbox), the lease folder's checks, processes of a uid found and killed, trees
handed over without following links. Grading as root end to end is in
tests/grader/test_unprivileged.py."""

import os
import subprocess
import sys
import time

import pytest

from grader.isolation import uids
from grader.isolation.uids import (
    UID_BASE,
    UID_SLOTS,
    UidLease,
    _own_folder,
    chown_tree,
    is_zombie,
    kill_user_processes,
    user_processes,
)


def test_concurrent_leases_get_different_uids_and_release_frees_one(tmp_path, monkeypatch):
    # leases in a folder of this test's: no killing, no cleaning of the real temporary folder
    # (a grader running beside this test holds its leases in /run)
    killed = []
    monkeypatch.setattr(uids, "kill_user_processes", killed.append)
    monkeypatch.setattr(uids.tempfile, "gettempdir", lambda: str(tmp_path))
    locks = tmp_path / "locks"
    first, second = UidLease(locks), UidLease(locks)
    assert first.uid != second.uid
    assert all(UID_BASE <= lease.uid < UID_BASE + UID_SLOTS for lease in (first, second))
    assert (locks / str(first.uid)).is_file()
    assert oct(locks.stat().st_mode & 0o777) == oct(0o700)
    first.release()
    first.release()  # twice: harmless
    third = UidLease(locks)
    assert third.uid == first.uid  # the freed one is taken again (same start slot)
    second.release()
    third.release()
    assert killed == [first.uid, second.uid, first.uid, first.uid, second.uid, third.uid]


def test_the_lease_folder_must_be_private(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(RuntimeError, match="no one else can write"):
        _own_folder(shared)
    (tmp_path / "link").symlink_to(tmp_path / "real-folder")
    (tmp_path / "real-folder").mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match="must be a folder"):
        _own_folder(tmp_path / "link")
    with pytest.raises(RuntimeError, match="is missing"):
        _own_folder(tmp_path / "no" / "such")


def test_user_processes_and_zombies():
    assert os.getpid() in user_processes(os.getuid())
    assert not is_zombie(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while not is_zombie(child.pid) and time.monotonic() < deadline:  # exited, not yet reaped
        time.sleep(0.01)
    assert child.pid not in user_processes(os.getuid())
    child.wait()
    assert is_zombie(child.pid)  # gone altogether counts too
    assert user_processes(UID_BASE + UID_SLOTS + 7) == []


def test_kill_user_processes_returns_at_once_when_none_are_left():
    kill_user_processes(UID_BASE + UID_SLOTS + 7, wait=0)


def test_chown_tree_never_follows_links(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("x")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    (tree / "link").symlink_to(outside)
    uid = os.getuid()  # to oneself: allowed for anyone, and it proves the walk works
    chown_tree(tree, uid)
    assert (tree / "sub" / "f").stat().st_uid == uid
    if os.geteuid() == 0:
        chown_tree(tree, UID_BASE)
        assert (tree / "sub" / "f").stat().st_uid == UID_BASE
        assert os.lstat(tree / "link").st_uid == UID_BASE
        assert outside.stat().st_uid == 0  # what the link points to is untouched
