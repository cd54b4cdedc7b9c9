"""Write a staged tree into a folder that others share, touching only the files we wrote.

`python -m grader publish` writes each of its outputs (DEST/site, DEST/starter,
DEST/self-study) with `write_owned`. The folder's MANIFEST lists, one relative path a line, every
file an earlier run wrote there. A new run

- refuses a folder that holds anything but `.git` and has no MANIFEST (it did not create it),
- refuses to overwrite a file that exists but is not in MANIFEST (someone else's: a LICENSE, a CI
  file added by hand), naming the files, before it changes anything,
- deletes only files of the old MANIFEST that the new tree no longer has (and the folders that
  this leaves empty), and
- keeps everything else: `.git`, a `.venv` that `make venv` built, files added by hand.

MANIFEST is written first with the union of old and new files, so a run stopped halfway still
owns everything it may have written, and rewritten with the new files at the end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

MANIFEST = ".published-files"
HEADER = ("# Files written by the instructors' `python -m grader publish`; the next publish "
          "replaces or deletes exactly these and keeps every other file.\n")


class OwnershipError(RuntimeError):
    """The target folder holds files that publish did not write and would have to replace."""


def owned_files(folder: Path) -> set[str] | None:
    """The relative paths MANIFEST lists, or None when the folder has no MANIFEST."""
    manifest = folder / MANIFEST
    if manifest.is_symlink() or not manifest.is_file():
        return None
    lines = manifest.read_text(encoding="utf-8").splitlines()
    return {line for line in lines if line and not line.startswith("#") and _safe(line)}


def _safe(rel: str) -> bool:
    """A manifest line we may act on: relative, inside the folder, no `..` (a hand-edited
    manifest cannot make publish delete outside it)."""
    path = PurePosixPath(rel)
    return not path.is_absolute() and ".." not in path.parts and rel != MANIFEST


def staged_files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}


def check_writable(staged: Path, folder: Path) -> None:
    """OwnershipError unless `folder` may receive `staged` (see the module docstring)."""
    if folder.is_symlink() or folder.exists() and not folder.is_dir():
        raise OwnershipError(f"{folder} exists and is not a folder")
    if not folder.exists():
        return
    owned = owned_files(folder)
    if owned is None:
        foreign = sorted(p.name for p in folder.iterdir() if p.name != ".git")
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise OwnershipError(f"{folder} is not empty ({shown}) and was not written by "
                                 f"publish (no {MANIFEST}); refusing to write into it")
        return
    clashes = []
    for rel in sorted(staged_files(staged)):
        target = folder / rel
        if any(folder.joinpath(*PurePosixPath(rel).parts[:i]).is_symlink()
               for i in range(1, len(PurePosixPath(rel).parts) + 1)):
            clashes.append(f"{rel} (a link)")
        elif (target.exists() or target.is_symlink()) and rel not in owned:
            clashes.append(rel)
        elif target.is_dir():
            clashes.append(f"{rel} (a folder)")
    if clashes:
        raise OwnershipError(f"{folder} holds files that publish did not write and would "
                             f"replace: {', '.join(clashes[:10])}; move them away first")


def write_owned(staged: Path, folder: Path) -> tuple[list[str], list[str]]:
    """Copy the tree `staged` into `folder` (checked with check_writable first); returns the
    files written and the files of the previous publication that were deleted."""
    check_writable(staged, folder)
    folder.mkdir(parents=True, exist_ok=True)
    old = owned_files(folder) or set()
    new = staged_files(staged)
    _write_manifest(folder, old | new)
    removed = []
    for rel in sorted(old - new):
        target = folder / rel
        if target.is_symlink() or target.is_file():
            target.unlink()
            removed.append(rel)
        _prune_empty_parents(target.parent, folder)
    for rel in sorted(new):
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged / rel, target)
    _write_manifest(folder, new)
    return sorted(new), removed


def _write_manifest(folder: Path, files: set[str]) -> None:
    tmp = folder / f"{MANIFEST}.tmp"
    tmp.write_text(HEADER + "".join(f"{rel}\n" for rel in sorted(files)), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def _prune_empty_parents(path: Path, stop: Path) -> None:
    """Remove `path` and its parents up to (not including) `stop` while they are empty."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return  # not empty (someone's file, or one we still own), or already gone
        path = path.parent
