"""grader/commands/owned_tree.py: publish writes into a shared folder only the files it wrote
before (its MANIFEST), refuses other people's files and deletes only its own. The whole
publish command is in test_publish.py."""

from pathlib import Path

import pytest

from grader.commands.owned_tree import (
    MANIFEST,
    OwnershipError,
    check_writable,
    owned_files,
    write_owned,
)


def stage(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_first_write_then_update_deletes_only_what_it_owned(tmp_path):
    dest = tmp_path / "dest"
    one = stage(tmp_path / "one", {"a.txt": "1", "sub/b.txt": "1", "gone/c.txt": "1"})
    written, removed = write_owned(one, dest)
    assert written == ["a.txt", "gone/c.txt", "sub/b.txt"] and removed == []
    assert owned_files(dest) == {"a.txt", "gone/c.txt", "sub/b.txt"}
    (dest / ".git").mkdir()
    (dest / "LICENSE").write_text("someone's")
    (dest / "sub" / "mine.txt").write_text("by hand")
    two = stage(tmp_path / "two", {"a.txt": "2", "sub/b.txt": "2"})
    written, removed = write_owned(two, dest)
    assert removed == ["gone/c.txt"]
    assert not (dest / "gone").exists()  # the folder it left empty went too
    assert (dest / "a.txt").read_text() == "2"
    assert (dest / "LICENSE").read_text() == "someone's"
    assert (dest / "sub" / "mine.txt").exists() and (dest / ".git").is_dir()
    assert owned_files(dest) == {"a.txt", "sub/b.txt"}


def test_refuses_a_folder_it_did_not_create(tmp_path):
    dest = tmp_path / "dest"
    (dest / ".git").mkdir(parents=True)
    staged = stage(tmp_path / "s", {"a.txt": "1"})
    check_writable(staged, dest)  # only .git: fine
    (dest / "README").write_text("x")
    with pytest.raises(OwnershipError, match=f"no {MANIFEST}"):
        write_owned(staged, dest)
    assert not (dest / "a.txt").exists()


def test_refuses_to_overwrite_a_file_it_does_not_own(tmp_path):
    dest = tmp_path / "dest"
    write_owned(stage(tmp_path / "one", {"a.txt": "1"}), dest)
    (dest / "ci.yml").write_text("by hand")
    with pytest.raises(OwnershipError, match="ci.yml"):
        write_owned(stage(tmp_path / "two", {"a.txt": "2", "ci.yml": "new"}), dest)
    assert (dest / "a.txt").read_text() == "1"  # refused before anything changed
    assert (dest / "ci.yml").read_text() == "by hand"


def test_refuses_links_in_the_way(tmp_path):
    dest = tmp_path / "dest"
    write_owned(stage(tmp_path / "one", {"sub/a.txt": "1"}), dest)
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "sub" / "a.txt").unlink()
    (dest / "sub").rmdir()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(OwnershipError, match="a link"):
        write_owned(stage(tmp_path / "two", {"sub/a.txt": "2"}), dest)
    assert list(outside.iterdir()) == []
    link = tmp_path / "linked-dest"
    link.symlink_to(dest)
    with pytest.raises(OwnershipError, match="not a folder"):
        check_writable(tmp_path / "two", link)


def test_a_hand_edited_manifest_cannot_reach_outside(tmp_path):
    dest = tmp_path / "dest"
    write_owned(stage(tmp_path / "one", {"a.txt": "1"}), dest)
    (tmp_path / "victim").write_text("x")
    with open(dest / MANIFEST, "a") as f:
        f.write("../victim\n/etc/passwd\n# a comment\n")
    assert owned_files(dest) == {"a.txt"}
    write_owned(stage(tmp_path / "two", {"b.txt": "1"}), dest)
    assert (tmp_path / "victim").exists()
    assert sorted(p.name for p in dest.iterdir()) == [MANIFEST, "b.txt"]


def test_no_manifest_or_a_linked_one_owns_nothing(tmp_path):
    assert owned_files(tmp_path) is None
    (tmp_path / "elsewhere").write_text("a.txt\n")
    (tmp_path / MANIFEST).symlink_to(tmp_path / "elsewhere")
    assert owned_files(tmp_path) is None
