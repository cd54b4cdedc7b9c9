"""grader/files.py: student files are data (names checked, links never followed, bounded reads,
writes that cannot be redirected). The hostile hand-ins that use these end to end are in
tests/grader/test_hostile_files.py."""

import os
from pathlib import Path

import pytest

from grader.files import (
    MAX_HAND_IN_FILES,
    UnsafeFile,
    copy_hand_in,
    lstat_kind,
    make_folders,
    name_problem,
    read_bytes,
    remove_tree,
    safe_name,
    write_atomic,
)


@pytest.mark.parametrize("name", ["ann", "ann.lee@uni.edu", "a+b", "ex2_identity", "A-1",
                                  b"ann", "x" * 100])
def test_valid_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name, why", [
    (".", "a path part"), ("..", "a path part"), ("", "characters"), ("a/b", "characters"),
    ("*", "characters"), ("a b", "characters"), (".hidden", "characters"),
    ("x" * 101, "too long"), ("ann\udcff", "not UTF-8"), (b"\xff", "not UTF-8"),
    ("ann\n", "characters")])
def test_refused_names(name, why):
    assert why in name_problem(name)


def test_safe_name_escapes_only_refused_names():
    assert safe_name("ann") == "ann"
    assert safe_name("a*\udcff") == ascii("a*\udcff")


def test_lstat_kind_never_follows(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to(tmp_path / "f")
    os.mkfifo(tmp_path / "p")
    kinds = {n: lstat_kind(tmp_path / n) for n in ("f", "d", "l", "p", "none")}
    assert kinds == {"f": "file", "d": "dir", "l": "link", "p": "special", "none": "missing"}


def test_read_bytes_refuses_links_fifos_hard_links_and_large_files(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    assert read_bytes(f) == b"12345"
    (tmp_path / "l").symlink_to(f)
    with pytest.raises(UnsafeFile, match="link or special"):
        read_bytes(tmp_path / "l")
    os.mkfifo(tmp_path / "p")
    with pytest.raises(UnsafeFile):  # never blocks waiting for a writer
        read_bytes(tmp_path / "p")
    with pytest.raises(UnsafeFile, match="larger than 4 bytes"):
        read_bytes(f, limit=4)
    os.link(f, tmp_path / "h")
    assert read_bytes(tmp_path / "h") == b"12345"
    with pytest.raises(UnsafeFile, match="hard link"):
        read_bytes(tmp_path / "h", single_link=True)


def test_write_atomic_replaces_a_link_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "out").symlink_to(target)
    write_atomic(tmp_path / "out", b"new", mode=0o600)
    assert target.read_text() == "keep"
    assert lstat_kind(tmp_path / "out") == "file"
    assert (tmp_path / "out").read_bytes() == b"new"
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "target"]  # no temp left


def test_write_atomic_refuses_a_linked_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeFile, match="not a plain folder"):
        write_atomic(tmp_path / "linked" / "x", b"x")
    assert not (tmp_path / "real" / "x").exists()


def test_make_folders(tmp_path):
    made = make_folders(tmp_path, "a", "b")
    assert made == tmp_path / "a" / "b" and made.is_dir()
    assert make_folders(tmp_path, "a", "b") == made  # existing folders are fine
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "a" / "l").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeFile, match="not a plain folder"):
        make_folders(tmp_path, "a", "l", "c")
    assert not (tmp_path / "elsewhere" / "c").exists()
    for bad in ("..", "", "x/y"):
        with pytest.raises(UnsafeFile, match="not a folder name"):
            make_folders(tmp_path, bad)


def test_copy_hand_in_copies_files_and_refuses_the_rest(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "nb.ipynb").write_text("{}")
    (src / "sub" / "data.txt").write_text("d")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"x")
    (src / "link").symlink_to("/etc/passwd")
    (src / "dirlink").symlink_to(tmp_path)
    os.mkfifo(src / "fifo")
    refused = copy_hand_in(src, tmp_path / "dest")
    dest = tmp_path / "dest"
    assert (dest / "nb.ipynb").read_text() == "{}"
    assert (dest / "sub" / "data.txt").read_text() == "d"
    assert not (dest / "__pycache__").exists()
    assert sorted(Path(p).name for p in os.listdir(dest)) == ["nb.ipynb", "sub"]
    assert sorted(r.split(" ")[0] for r in refused) == ["dirlink", "fifo", "link"]
    assert "dirlink (a link)" in refused


def test_copy_hand_in_stops_after_max_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(MAX_HAND_IN_FILES + 2):
        (src / f"f{i:05d}").write_text("")
    refused = copy_hand_in(src, tmp_path / "dest")
    assert len(refused) == 2 and all(f"more than {MAX_HAND_IN_FILES}" in r for r in refused)
    assert len(os.listdir(tmp_path / "dest")) == MAX_HAND_IN_FILES


def test_remove_tree_removes_read_only_folders_and_not_what_links_point_to(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("x")
    tree = tmp_path / "tree"
    (tree / "ro").mkdir(parents=True)
    (tree / "ro" / "f").write_text("x")
    (tree / "link").symlink_to(keep)
    os.chmod(tree / "ro", 0o500)
    remove_tree(tree)
    assert not tree.exists() and (keep / "precious").exists()
    (tmp_path / "alias").symlink_to(keep)
    remove_tree(tmp_path / "alias")  # a link: only the link goes
    assert not (tmp_path / "alias").exists() and (keep / "precious").exists()
