"""`python -m grader release`: student versions, determinism, leak check; the real assignments.

Runs nbgrader's generate_assignment in-process on the toy assignment in tests/fixtures/toy
(about 2 s per release) and, for the real assignments, compares a fresh release with the
committed exercises/.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, TOY, copy_toy

from grader.bridge.course import Roots, list_assignments
from grader.commands.cli import main
from grader.commands.release import check_committed_release, find_leaks, secret_lines

REAL = Roots.from_root(REPO)


@pytest.fixture
def toy_root(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    copy_toy(root)
    return root


def _cells(path: Path) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells}


def test_release_writes_student_version(toy_root: Path) -> None:
    assert main(["release", "--root", str(toy_root)]) == 0
    cells = _cells(toy_root / "exercises" / "toy" / "toy.ipynb")
    assert "raise NotImplementedError()" in cells["square"]
    assert "def square(x):" in cells["square"]  # the stub keeps the def line
    assert "return x * x" not in cells["square"]
    assert "twice_the_input" not in cells["double"]
    assert cells["test_double"].strip() == 'assert double(2) == 4, "double(2) should be 4"'
    assert cells["explain"].strip() == "YOUR ANSWER HERE"
    raw = (toy_root / "exercises" / "toy" / "toy.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "hidden: square(-4)"):
        assert marker not in raw
    assert '"outputs": []' in raw and '"execution_count": null' in raw


def test_release_is_byte_identical_across_runs_and_folders(toy_root: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "course"
    copy_toy(other)
    released = toy_root / "exercises" / "toy" / "toy.ipynb"
    assert main(["release", "--root", str(toy_root)]) == 0
    first = released.read_bytes()
    assert main(["release", "--root", str(toy_root), "--assignment", "toy"]) == 0
    assert released.read_bytes() == first
    assert main(["release", "--root", str(other)]) == 0
    assert (other / "exercises" / "toy" / "toy.ipynb").read_bytes() == first
    assert check_committed_release(Roots.from_root(toy_root), "toy") == []


def test_leaked_marker_is_refused_and_nothing_written(toy_root: Path, capsys) -> None:
    # nbgrader strips regions from notebooks only; other files are copied verbatim
    (toy_root / "solutions" / "toy" / "reference.py").write_text(
        "### BEGIN SOLUTION\nsecret_answer = 42\n### END SOLUTION\n")
    assert main(["release", "--root", str(toy_root)]) == 1
    err = capsys.readouterr().err
    assert "refusing to release toy" in err and "'BEGIN SOLUTION'" in err
    assert "secret_answer = 42" in err
    assert not (toy_root / "exercises" / "toy").exists()


def test_leaked_solution_line_in_a_copied_file_keeps_old_release(toy_root: Path,
                                                                  capsys) -> None:
    assert main(["release", "--root", str(toy_root)]) == 0
    released = toy_root / "exercises" / "toy" / "toy.ipynb"
    before = released.read_bytes()
    # a helper file next to the notebook is copied verbatim into the release
    (toy_root / "solutions" / "toy" / "helper.py").write_text(
        "def double(x):\n    twice_the_input = 2 * x\n    return twice_the_input\n")
    assert main(["release", "--root", str(toy_root)]) == 1
    assert "twice_the_input = 2 * x" in capsys.readouterr().err
    assert released.read_bytes() == before
    assert not (toy_root / "exercises" / "toy" / "helper.py").exists()


def test_secret_lines_are_solution_and_hidden_text_only() -> None:
    secrets = secret_lines(TOY / "solutions" / "toy")
    assert "twice_the_input = 2 * x" in secrets
    assert 'assert square(-4) == 16, "hidden: square(-4) should be 16"' in secrets
    assert "Because multiplying by two adds the number to itself once more." in secrets
    # public text and nbgrader's stubs are never secrets
    assert "def square(x):" not in secrets
    assert "raise NotImplementedError()" not in secrets
    assert "" not in secrets


def test_find_leaks_reports_file_and_line(toy_root: Path, tmp_path: Path) -> None:
    released = tmp_path / "toy"
    released.mkdir()
    (released / "notes.md").write_text("intro\n    return x * x\n")
    leaks = find_leaks(toy_root / "solutions" / "toy", released)
    assert [(leak.file, leak.line) for leak in leaks] == [("toy/notes.md", "return x * x")]


def test_unknown_assignment_is_an_error(toy_root: Path, capsys) -> None:
    assert main(["release", "--root", str(toy_root), "--assignment", "nope"]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(not list_assignments(REAL.solutions),
                    reason="solutions/ holds no assignment yet (solutions/<id>/<id>.ipynb)")
@pytest.mark.parametrize("assignment_id", list_assignments(REAL.solutions))
def test_committed_exercises_are_the_release_and_leak_free(assignment_id: str) -> None:
    assert check_committed_release(REAL, assignment_id) == []


def test_cells_without_ids_still_release_identically(toy_root: Path) -> None:
    # nbformat 4.5 would invent random ids for these; the release must not depend on them
    path = toy_root / "solutions" / "toy" / "toy.ipynb"
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        del cell["id"]
    path.write_text(json.dumps(nb))
    released = toy_root / "exercises" / "toy" / "toy.ipynb"
    assert main(["release", "--root", str(toy_root)]) == 0
    first = released.read_bytes()
    assert main(["release", "--root", str(toy_root)]) == 0
    assert released.read_bytes() == first
    assert json.loads(first)["cells"][0]["id"] == "cell-0"
