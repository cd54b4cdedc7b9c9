"""Student files are data: names checked, links never followed, writes that cannot be redirected.

Everything under SUBMISSIONS and the copies the grader makes of it is student-influenced. The
functions here are the only way the grader touches such paths:

* ``name_problem(name)``   why a student or assignment folder name is refused (or None)
* ``copy_hand_in(src, dest)``  regular files and folders only; links, hard links and
                           special files (FIFOs, sockets, devices) are refused, never read
* ``read_bytes(path)``     O_NOFOLLOW | O_NONBLOCK, regular files only, bounded size
* ``write_atomic(path, data)``  a new file in the same folder, then rename(): never through a
                           link that someone left at `path`
* ``make_folders(root, *parts)``  root/part1/part2/... made one level at a time, each a plain
                           folder (a link in the way is refused, never followed)
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

# Student ids are user names or e-mail addresses; assignment ids are identifiers. No glob
# characters (nbgrader expands * ? [ ] in ids), no path parts, nothing a shell or CSV reader
# would read differently.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
MAX_FILE_BYTES = 64 * 1024**2  # one file of a hand-in (a notebook is far smaller)
MAX_HAND_IN_FILES = 1000


class UnsafeFile(ValueError):
    """A path that is a link, a special file or too large; the message says which."""


def name_problem(name: str | bytes) -> str | None:
    """Why `name` cannot be a student or assignment folder name, or None when it can."""
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            return "not UTF-8"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir gives undecodable bytes as lone surrogates
        return "not UTF-8"
    if name in (".", ".."):
        return "a path part"
    if not NAME_PATTERN.fullmatch(name):
        return "characters other than letters, digits and . _ @ + - (or too long)"
    return None


def safe_name(name: str) -> str:
    """A printable, unambiguous spelling of any folder name (for CSVs and logs): a valid name
    as it is, anything else as Python's ascii() escapes it, e.g. '\\udcff*'."""
    return name if name_problem(name) is None else ascii(name)


def lstat_kind(path: Path) -> str:
    """'dir', 'file', 'link', 'missing' or 'special' (FIFO, socket, device), never following."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "special"


def read_bytes(path: Path | str, limit: int = MAX_FILE_BYTES, single_link: bool = False,
               dir_fd: int | None = None) -> bytes:
    """The bytes of a regular file, opened without following a final link and without blocking
    on a FIFO; UnsafeFile for anything else or anything larger than `limit`. single_link:
    refuse a file with more than one hard link too (a student with an account on the grading
    machine could hard-link a file only root may read into a hand-in). dir_fd: `path` is a
    name inside that open folder (no path is resolved again, so no race with a new link)."""
    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (40, 6):  # ELOOP: a link; ENXIO: a FIFO/socket with no writer
            raise UnsafeFile(f"{name}: a link or special file") from None
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{name}: not a regular file")
        if single_link and info.st_nlink > 1:
            raise UnsafeFile(f"{name}: a hard link")
        if info.st_size > limit:
            raise UnsafeFile(f"{name}: larger than {limit} bytes")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(f"{name}: larger than {limit} bytes")
    return data


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through a new temporary file in the same folder and rename():
    a link (or anything) at `path` is replaced, never written through. The folder itself must
    be the grader's (not a link)."""
    path = Path(path)
    if lstat_kind(path.parent) != "dir":
        raise UnsafeFile(f"{path.parent}: not a plain folder")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_folders(root: Path, *parts: str) -> Path:
    """root/parts[0]/parts[1]/... as plain folders, made where missing: UnsafeFile when one of
    them (or root) is a link or not a folder. Returns the last one."""
    path = Path(root)
    if lstat_kind(path) != "dir":
        raise UnsafeFile(f"{path}: not a plain folder")
    for part in parts:
        if part in ("", ".", "..") or "/" in part:
            raise UnsafeFile(f"{part!r}: not a folder name")
        path = path / part
        try:
            os.mkdir(path, 0o755)  # mkdir never follows a link at `path`: it fails
        except FileExistsError:
            pass
        if lstat_kind(path) != "dir":
            raise UnsafeFile(f"{path}: not a plain folder")
    return path


def copy_hand_in(src: Path, dest: Path) -> list[str]:
    """Copy the folder `src` to the new folder `dest`: folders and regular files only.

    Returns what was refused (links, FIFOs, sockets, devices, over-large files, entries past
    MAX_HAND_IN_FILES), as relative paths with the reason; those are not copied and not read.
    """
    refused: list[str] = []
    count = 0
    os.makedirs(dest, mode=0o755)
    # os.fwalk holds each folder open and never follows links: a folder swapped for a link
    # while we copy is not entered, and files are opened relative to their folder's fd.
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(src, follow_symlinks=False):
        rel = Path(dirpath).relative_to(src)
        keep = []
        for name in sorted(dirnames):  # fwalk lists a link to a folder among the folders
            if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                refused.append(f"{safe_name(str(rel / name))} (a link)")
            elif name not in ("__pycache__", ".ipynb_checkpoints"):
                keep.append(name)
                os.makedirs(dest / rel / name, mode=0o755)
        dirnames[:] = keep
        for name in sorted(filenames):
            count += 1
            if count > MAX_HAND_IN_FILES:
                refused.append(f"{safe_name(str(rel / name))} (more than {MAX_HAND_IN_FILES} "
                               "files)")
                continue
            try:
                data = read_bytes(name, single_link=True, dir_fd=dir_fd)
            except UnsafeFile as err:
                refused.append(f"{safe_name(str(rel / name))} ({str(err).split(': ', 1)[-1]})")
                continue
            write_atomic(dest / rel / name, data)
    return refused


def remove_tree(path: Path) -> None:
    """Delete a folder the grader made, without following any link inside it (shutil.rmtree
    does not follow links; folders nbgrader made read-only are made writable first)."""
    import shutil

    if lstat_kind(path) == "link":
        os.unlink(path)
        return
    for dirpath, dirnames, _ in os.walk(path, followlinks=False):
        for name in [".", *dirnames]:
            p = os.path.join(dirpath, name)
            if lstat_kind(Path(p)) == "dir":
                os.chmod(p, 0o700)
    shutil.rmtree(path)
