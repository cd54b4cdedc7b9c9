"""grader/integrity/similarity_html.py: the similarity report's pages (one per pair and an
index): student code and names escaped, no script, a CSP, matched lines marked, the old pages
replaced. The report's pairs themselves are found in test_similarity.py."""

from types import SimpleNamespace

import pytest

from grader.integrity.similarity_html import CSP, FOLDER, page_name, pair_page, write_reports

EVIL = "<script>alert(1)</script>"


def match(**kwargs):
    fields = dict(student_id="ann", assignment="ex2", cell="block", kind="student",
                  source="bo", source_cell="block", score=0.875, shared=12, lines="2-3",
                  source_lines="1,3")
    return SimpleNamespace(**(fields | kwargs))


def test_pair_page_escapes_and_marks_lines():
    page = pair_page(match(student_id=f"ann{EVIL}"), f"a = 1\nb = '{EVIL}'\nc = 3\n",
                     [("bo", "x\ny\nz\n")]).decode()
    assert "<script" not in page and "&lt;script&gt;" in page
    assert f'content="{CSP}"' in page
    left, right = page.split('<div class="side">')[1:]
    assert left.count('<tr class="match">') == 2  # lines 2-3
    assert right.count('<tr class="match">') == 2  # lines 1 and 3
    assert '<tr class="match"><td class="number">3</td><td class="text">z</td>' in right
    assert "score 0.875" in page and "12 shared fingerprints" in page


def test_library_matches_have_a_line_range_per_file():
    page = pair_page(match(kind="library", source_lines="1; 2"), "x\n",
                     [("models.py", "a\nb\n"), ("train.py", "c\nd\n")]).decode()
    assert page.count("<h3>models.py</h3>") == 1 and page.count('<tr class="match">') == 2
    with pytest.raises(ValueError):  # one range per file, or the pair is malformed
        pair_page(match(kind="library", source_lines="1"), "x\n", [("a", "a"), ("b", "b")])


def test_page_names_are_safe_file_names():
    assert page_name(3, match()) == "0003-ex2-block-ann-bo.html"
    name = page_name(12, match(student_id="../../etc/x y", source="a" * 200))
    assert name.startswith("0012-") and "/" not in name and " " not in name
    assert len(name) == len("0012-") + 80 + len(".html")


def test_write_reports_replaces_the_old_pages(tmp_path):
    folder = tmp_path / FOLDER
    folder.mkdir(parents=True)
    (folder / "0001-stale.html").write_text("old")
    (folder / "notes.txt").write_text("keep")
    pairs = [match(), match(student_id="cy", score=0.5)]
    names = write_reports(tmp_path, pairs, lambda m: ("a\nb\nc\n", [("bo", "x\ny\nz\n")]))
    assert names == [f"{FOLDER}/0001-ex2-block-ann-bo.html", f"{FOLDER}/0002-ex2-block-cy-bo.html"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "0001-ex2-block-ann-bo.html", "0002-ex2-block-cy-bo.html", "index.html", "notes.txt"]
    index = (folder / "index.html").read_text()
    assert "2 pair(s)" in index and '<a href="0002-ex2-block-cy-bo.html">0.500</a>' in index


def test_write_reports_refuses_a_linked_folder(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / FOLDER).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="not a plain folder"):
        write_reports(tmp_path, [match()], lambda m: ("a", [("bo", "b")]))
    assert list((tmp_path / "elsewhere").iterdir()) == []
