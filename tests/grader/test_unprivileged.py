"""Issue 10, item 2: started as root, the grader does all work on student files as another user.

nbgrader's steps (Autograde's copies, the kernel run, the executed notebook's writing, the
permission step, GenerateFeedback) run in a child of grader.bridge.nbgrader_steps' fork server as a
leased sandbox user; the root process only writes the gradebook, the CSVs, the notebook and the
page from the child's data. Checked here:

* the child's identity: the leased uid, no groups, its own folder, DIR and solutions unseen;
* a root run (--no-sandbox, so the notebook can reach nbgrader's folder W through its parent's
  /proc entry) whose notebook plants links and a FIFO there, aimed at a root-only decoy tree:
  the decoy hashes the same (bytes and modes), DIR holds no link and no decoy text, the other
  student's grade is intact, and the kernel ran as the leased user;
* the normal-user mode: `python -m grader autograde` run as an unprivileged user on the toy
  course grades it, and leaves nothing in DIR owned by anyone else;
* a failed trusted verdict's message reaches the student's feedback page, escaped;
* a helper written outside the answer cells works: the notebook's kernel, which ran every
  cell, answers the trusted verdict (issue 21 item 2); where only a fresh subject answers (the
  given and answer cells), a name it lacks gives the flag `undefined-names` (unit test in
  tests/grader/commands/test_autograde.py).
Runtime: about 2-3 min on 2 loaded cores (two toy autograde runs), so marked slow.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, copy_toy
from submissions import read_by_student
from test_grader_cli import _submission

from grader.bridge import nbgrader_steps
from grader.commands.cli import main
from grader.isolation.limits import Limits
from grader.isolation.uids import UID_BASE, UID_SLOTS, UidLease, is_zombie, user_processes

AS_ROOT = os.geteuid() == 0
USER = 62345  # the "normal user" of the normal-user test: outside the sandbox uid range
SECRET = "ROOT-ONLY-DECOY-0815"
needs_root = pytest.mark.skipif(not AS_ROOT or shutil.which("setpriv") is None,
                                reason="needs root and setpriv")


def needs_root_and_sandbox(test):
    return pytest.mark.needs_sandbox(needs_root(test))

# The planter's answer cell: as the notebook runs (no sandbox), find nbgrader's folder W (its
# parent's working folder), print who it is, and leave links and a FIFO there aimed at DECOY.
# (The trusted verdict's subject runs the cell too; under --no-sandbox as root it plants nothing.)
PLANT = '''import os


def square(x):
    return x * x


def _plant(decoy):
    print(f"uid={os.getuid()} ")
    if os.getuid() == 0:  # root (the trusted verdict's subject under --no-sandbox): no harm
        return
    try:
        work = os.readlink(f"/proc/{os.getppid()}/cwd")
    except OSError as err:
        print("no work folder", err)
        return
    for rel, target in [("autograded/planter/toy/notes.txt", decoy + "/secret.txt"),
                        ("autograded/planter/toy/sub", decoy + "/sub"),
                        ("feedback", decoy), ("toy.html", decoy + "/secret.txt"),
                        ("gradebook-copy.db", decoy + "/secret.txt")]:
        path = os.path.join(work, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.symlink(target, path)
        except OSError as err:
            print("link", rel, err)
    try:
        os.mkfifo(os.path.join(work, "autograded", "planter", "toy", "pipe"))
    except OSError as err:
        print("fifo", err)
    try:
        print(open(decoy + "/secret.txt").read())
    except OSError as err:
        print("cannot read the decoy:", type(err).__name__)


_plant(DECOY)
'''


def _tree(root: Path) -> dict[str, tuple]:
    """Every entry under root: its mode, owner and bytes (links as their text, not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = os.lstat(path)
            data = (os.readlink(path).encode() if stat.S_ISLNK(info.st_mode)
                    else path.read_bytes() if stat.S_ISREG(info.st_mode) else b"")
            out[str(path.relative_to(root))] = (info.st_mode, info.st_uid,
                                                hashlib.sha256(data).hexdigest())
    return out


def _toy_course(folder: Path) -> Path:
    root = folder / "course"
    copy_toy(root)
    assert main(["release", "--root", str(root)]) == 0
    return root


def _put(submissions: Path, student: str, nb) -> None:
    (submissions / student / "toy").mkdir(parents=True)
    nbformat.write(nb, submissions / student / "toy" / "toy.ipynb")


def _with_helper_cell(root: Path):
    """A correct notebook whose double() calls a helper defined in a cell the student added."""
    nb = _submission(root, {"double": "def double(x):\n    return helper(x)"})
    at = next(i for i, c in enumerate(nb.cells)
              if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
    nb.cells.insert(at, nbformat.v4.new_code_cell("def helper(x):\n    return 2 * x"))
    return nb


# ----------------------------------------------------------------------------- unit tests


@needs_root_and_sandbox
def test_child_is_the_leased_user_in_its_own_folder(tmp_path):
    settings = {"timeout": 30, "kernel_manager_class": None, "sandbox": True,
                "limits": dict(Limits().__dict__)}
    secret = tmp_path / "instructor-only"
    secret.mkdir()
    with nbgrader_steps.StepsChild(settings, 120) as child:
        answer = child.request({"op": "identity", "paths": [str(secret), str(REPO / "solutions"),
                                                            str(child.folder)]}, 100_000)
        uid, folder = child.uid, child.folder
        assert UID_BASE <= uid < UID_BASE + UID_SLOTS
        assert (answer["uid"], answer["euid"], answer["gid"]) == (uid, uid, uid)
        assert answer["groups"] == []
        assert answer["cwd"] == str(folder) and os.lstat(folder).st_uid == uid
        assert answer["sees"] == {str(secret): False, str(REPO / "solutions"): False,
                                  str(folder): True}
    assert not folder.exists() and user_processes(uid) == []


# ----------------------------------------------------------------------------- a root run


@pytest.mark.slow
@needs_root_and_sandbox
def test_root_never_follows_what_the_notebook_left(tmp_path):
    decoy = tmp_path / "decoy"  # root-only, outside DIR
    (decoy / "sub").mkdir(parents=True)
    (decoy / "secret.txt").write_text(SECRET)
    (decoy / "sub" / "deep.txt").write_text(SECRET)
    for path in (decoy / "secret.txt", decoy / "sub" / "deep.txt"):
        path.chmod(0o600)
    decoy.chmod(0o700)
    before = _tree(decoy)
    root = _toy_course(tmp_path)
    submissions = tmp_path / "submissions"
    _put(submissions, "alice", _submission(root))
    _put(submissions, "planter", _submission(root, {"square": f"DECOY = {str(decoy)!r}\n"
                                                              + PLANT}))
    work = tmp_path / "work"
    proc = subprocess.Popen(  # --jobs 1: its fork server's folder is gsz-<this pid>-*
        [sys.executable, "-m", "grader", "autograde", str(submissions), "--workdir", str(work),
         "--root", str(root), "--cell-timeout", "10", "--no-sandbox"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out + err
    assert _tree(decoy) == before  # nothing followed a link into it: bytes, modes, owners
    grades = read_by_student(work / "grades.csv")
    assert grades["alice"]["score"] == "3" and grades["alice"]["flags"] == ""
    assert float(grades["planter"]["score"]) <= 3
    for path in work.rglob("*"):
        assert not path.is_symlink(), path
        info = os.lstat(path)
        assert info.st_uid == 0, path  # written by the grader itself, none by a child
        if stat.S_ISREG(info.st_mode):
            assert SECRET.encode() not in path.read_bytes(), path
    executed = work / "autograded" / "planter" / "toy" / "toy.ipynb"
    if executed.exists():  # the kernel ran as the leased user, and could not read the decoy
        text = executed.read_text()
        assert "uid=0 " not in text and "uid=" in text
        assert "cannot read the decoy" in text
    assert not list(Path(tempfile.gettempdir()).glob(f"gsz-{proc.pid}-*"))  # R (and W) removed


# ----------------------------------------------------------------------------- normal user


def _hidden(path: Path) -> bool:
    return path != Path("/") and not os.stat(path).st_mode & 0o001


def _reveal(targets: list[Path]) -> list[str]:
    """bubblewrap arguments that make each target reachable for USER without exposing its
    root-only neighbours: the topmost root-only folder above (or at) a target becomes an empty
    tmpfs (0755), the folders on the way are recreated, and the target is bound back read-only
    (a root-only target itself: each of its entries is bound back)."""
    args: list[str] = []
    done: set[Path] = set()
    for target in sorted(targets):
        chain = [*reversed(target.parents), target]
        hidden = [p for p in chain if _hidden(p)]
        if not hidden:
            continue
        top = hidden[0]
        if top not in done:
            args += ["--perms", "0755", "--tmpfs", str(top)]
            done.add(top)
        for folder in chain[chain.index(top) + 1:-1]:
            if folder not in done:
                args += ["--perms", "0755", "--dir", str(folder)]
                done.add(folder)
        if target not in hidden:
            args += ["--ro-bind", str(target), str(target)]
            continue
        if target not in done:
            args += ["--perms", "0755", "--dir", str(target)]
        for entry in sorted(target.iterdir()):
            args += (["--symlink", os.readlink(entry), str(entry)] if entry.is_symlink()
                     else ["--ro-bind", str(entry), str(entry)])
    return args


def _as_user_command(args: list[str], home: Path) -> list[str]:
    """`python -m grader ARGS` as USER. Where the Python install or this checkout is root-only
    (a pyenv under /root here; a clone in a `mktemp -d` folder), a root bubblewrap first makes
    just those reachable, as they would be on a machine where an instructor's account runs
    the grader."""
    drop = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--"]
    env = ["env", f"HOME={home}", f"PATH={Path(sys.executable).parent}:/usr/bin:/bin",
           "LANG=C.UTF-8"]
    cmd = [*drop, *env, sys.executable, "-m", "grader", *args]
    reveal = _reveal([Path(sys.base_prefix).resolve(), REPO.resolve()])
    if reveal:
        cmd = ["bwrap", "--dev-bind", "/", "/", *reveal, "--", *cmd]
    return cmd


@pytest.mark.slow
@needs_root_and_sandbox
def test_normal_user_mode_grades_and_owns_everything():
    folder = Path(tempfile.mkdtemp(prefix="grader-user-"))  # not under root's 0700 tmp
    try:
        root = _toy_course(folder)
        submissions = folder / "submissions"
        _put(submissions, "alice", _submission(root))
        _put(submissions, "bob", _submission(root, {"double": "def double(x):\n"
                                                              "    return x + 2"}))
        _put(submissions, "helen", _with_helper_cell(root))
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, USER, USER, follow_symlinks=False)
        work = folder / "work"
        proc = subprocess.run(
            _as_user_command(["autograde", str(submissions), "--workdir", str(work), "--root",
                              str(root), "--cell-timeout", "10"], folder),
            cwd=REPO, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        grades = read_by_student(work / "grades.csv")
        assert (grades["alice"]["score"], grades["alice"]["flags"]) == ("3", "")
        assert (grades["bob"]["score"], grades["bob"]["flags"]) == ("2", "")
        # helen's double() calls a helper from a cell of her own: the kernel that ran it
        # answers the verdict, so it is there (student code runs once, in the notebook)
        assert (grades["helen"]["score"], grades["helen"]["flags"]) == ("3", "")
        assert "define helpers inside an answer cell" not in \
            (work / "feedback" / "helen" / "toy" / "toy.html").read_text()
        assert [p for p in work.rglob("*") if os.lstat(p).st_uid != USER] == []
        # the failed hidden check of bob's double() is explained on his page, not on alice's
        bob = (work / "feedback" / "bob" / "toy" / "toy.html").read_text()
        alice = (work / "feedback" / "alice" / "toy" / "toy.html").read_text()
        assert "Checked by the grader on your code" in bob
        assert "double(-1.5) should be -3.0" in bob
        assert "Checked by the grader on your code" not in alice
        assert not [p for p in Path(tempfile.gettempdir()).glob("gsz-*")
                    if os.lstat(p).st_uid == USER]  # the user's fork-server folders: removed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_zombie_is_not_a_live_process():
    # an exited child nobody has reaped yet (the container's init reaps orphans in its own
    # time) runs nothing: releasing a uid lease must not wait for it
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while not is_zombie(proc.pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert Path(f"/proc/{proc.pid}").exists()  # exited, not yet reaped: still listed there
        mine = user_processes(os.getuid())
        assert proc.pid not in mine and os.getpid() in mine
    finally:
        proc.wait()


@pytest.mark.skipif(not AS_ROOT, reason="uid leases are taken only as root")
def test_concurrent_leases_get_different_uids_from_one_fixed_folder(tmp_path):
    # the folder does not follow $TMPDIR: graders with different TMPDIRs see each other's leases
    where = [subprocess.run([sys.executable, "-c",
                             "import grader.isolation.uids as u; print(u.LOCK_DIR)"],
                            env={**os.environ, "TMPDIR": str(t)}, capture_output=True, text=True,
                            cwd=REPO, check=True).stdout.strip() for t in (tmp_path, "/tmp")]
    assert where == ["/run/grader-sandbox-uids"] * 2
    folder = tmp_path / "leases"
    first, second = UidLease(folder), UidLease(folder)
    try:
        assert first.uid != second.uid
        assert UID_BASE <= min(first.uid, second.uid) < UID_BASE + UID_SLOTS
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        first.release()
        second.release()
    again = UidLease(folder)  # a released uid can be leased again
    again.release()


@pytest.mark.skipif(not AS_ROOT, reason="uid leases are taken only as root")
@pytest.mark.parametrize("kind", ["link", "others_can_write", "not_a_folder"])
def test_a_lease_folder_someone_else_could_control_is_refused(tmp_path, kind):
    decoy = tmp_path / "decoy"
    decoy.mkdir(mode=0o700)
    folder = tmp_path / "leases"
    if kind == "link":  # e.g. made first by another user, pointing anywhere
        folder.symlink_to(decoy)
    elif kind == "others_can_write":
        folder.mkdir()
        folder.chmod(0o777)
    else:
        folder.write_text("")
    with pytest.raises(RuntimeError, match="no one else can write"):
        UidLease(folder)
    assert list(decoy.iterdir()) == []  # no lock file was created through the link
