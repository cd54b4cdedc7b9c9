"""End-to-end: `python -m grader autograde` on the toy assignment (tests/fixtures/toy).

Golden submissions with expected grades, in the style of nbgrader's own tests. The grader runs
as a subprocess with the venv's bin/ NOT on PATH (it must find `alembic` itself). Runtime: about
1-2 min on 2 cores (three autograde runs of 9 submissions), so marked slow. `check` on the toy
and on the real assignments: tests/grader/commands/test_check.py.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import nbformat
import pytest
from conftest import copy_toy, no_sandbox_args, read_csv
from nbgrader.api import Gradebook
from submissions import run_grader

from grader.bridge.course import CourseLayout
from grader.commands.cli import main

pytestmark = pytest.mark.slow

CELL_TIMEOUT = "6"  # seconds; only gina's sleeping answer gets near it

GRADES_HEADER = "student_id,assignment,score,max_score,needs_manual_grade,flags"
CELLS_HEADER = "student_id,assignment,notebook,grade_id,score,max_score"

# student -> (expected autograded cell scores, flags). Test cells: test_square 2, test_double 1;
# the written answer `explain` (1 point) is graded by hand.
EXPECTED = {
    "alice": ({"test_square": 2, "test_double": 1}, ""),  # correct; warns and prints to stderr
    "bob": ({"test_square": 2, "test_double": 0}, ""),  # double wrong on the hidden test
    "carol": ({"test_square": 2, "test_double": 1}, ""),  # deleted test_square: restored
    "dave": ({"test_square": 0, "test_double": 0}, "missing-notebook"),  # wrong file name
    "erin": ({"test_square": 0, "test_double": 0}, "invalid-notebook"),  # not JSON
    "frank": ({"test_square": 0, "test_double": 0}, "invalid-notebook"),  # empty file
    "gina": ({"test_square": 0, "test_double": 1}, "timeout"),  # square never returns
    # double kills the kernel: the cells run before it keep their scores
    "henry": ({"test_square": 2, "test_double": 0}, "kernel-died"),
    "ivan": ({"test_square": 0, "test_double": 0}, "invalid-notebook"),  # JSON, not a notebook
}


def _solved(root: Path) -> dict[str, str]:
    nb = nbformat.read(root / "solutions" / "toy" / "toy.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: "\n".join(
        line for line in c.source.splitlines() if "### " not in line)
        for c in nb.cells if c.metadata.nbgrader.get("solution")}


def _submission(root: Path, overrides: dict[str, str] | None = None, drop: tuple = ()):
    """The released notebook with every answer filled in (solution unless overridden)."""
    nb = nbformat.read(root / "exercises" / "toy" / "toy.ipynb", as_version=4)
    solved = {**_solved(root), **(overrides or {})}
    for cell in nb.cells:
        if cell.metadata.nbgrader.get("solution"):
            cell.source = solved[cell.metadata.nbgrader["grade_id"]]
    nb.cells = [c for c in nb.cells if c.metadata.nbgrader["grade_id"] not in drop]
    return nb


def _write_submissions(root: Path, submissions: Path) -> None:
    def put(student: str, nb=None, text: str | None = None, name: str = "toy.ipynb") -> None:
        folder = submissions / student / "toy"
        folder.mkdir(parents=True)
        if nb is not None:
            nbformat.write(copy.deepcopy(nb), folder / name)
        else:
            (folder / name).write_text(text)

    put("alice", _submission(root))
    put("bob", _submission(root, {"double": "def double(x):\n    return x + 2"}))
    put("carol", _submission(root, drop=("test_square",)))
    put("dave", _submission(root), name="notes.ipynb")
    put("erin", text="{this is not json")
    put("frank", text="")
    put("gina", _submission(root, {"square": "import time\n\n\ndef square(x):\n"
                                             "    time.sleep(600)"}))
    put("henry", _submission(root, {"double": "import os\n\n\ndef double(x):\n"
                                              "    os._exit(1)"}))
    put("ivan", text='{"hello": "world"}')


def _hashes(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _grader(*args: str):
    """`python -m grader ARGS` as an instructor runs it (venv's bin/ not on PATH)."""
    return run_grader(*args, venv_on_path=False, timeout=900)


def _autograde(root: Path, submissions: Path, workdir: Path, *extra: str):
    extra = (*extra, *no_sandbox_args())  # the toy submissions are ours: safe either way
    proc = _grader("autograde", str(submissions), "--workdir", str(workdir), "--root", str(root),
                   "--cell-timeout", CELL_TIMEOUT, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("grader")
    root = tmp / "course"
    copy_toy(root)
    assert main(["release", "--root", str(root)]) == 0
    submissions = tmp / "submissions"
    _write_submissions(root, submissions)
    before = _hashes(submissions)
    serial = _autograde(root, submissions, tmp / "serial")
    return {"root": root, "tmp": tmp, "submissions": submissions, "before": before,
            "serial": tmp / "serial", "proc": serial}


@pytest.fixture(scope="module")
def parallel(course: dict) -> Path:
    """--jobs 2 into a fresh DIR with the gradebook elsewhere (--db-url)."""
    workdir = course["tmp"] / "parallel"
    db_url = f"sqlite:///{course['tmp'] / 'other-gradebook.db'}"
    _autograde(course["root"], course["submissions"], workdir, "--jobs", "2", "--db-url", db_url)
    assert (course["tmp"] / "other-gradebook.db").is_file()
    assert not (workdir / "gradebook.db").exists()
    return workdir


def test_csv_headers_are_exact(course: dict) -> None:
    assert (course["serial"] / "grades.csv").read_text().splitlines()[0] == GRADES_HEADER
    assert (course["serial"] / "grades_by_cell.csv").read_text().splitlines()[0] == CELLS_HEADER


def test_cell_rows_in_order(course: dict) -> None:
    rows = read_csv(course["serial"] / "grades_by_cell.csv")
    assert {r["max_score"] for r in rows if r["grade_id"] == "test_square"} == {"2"}
    # rows sorted by student, then in notebook order
    keys = [(r["student_id"], r["grade_id"]) for r in rows]
    assert keys == [(s, g) for s in sorted(EXPECTED)
                    for g in ("test_square", "test_double", "explain")]


@pytest.mark.parametrize("student", EXPECTED)  # one report per submission
def test_scores_per_cell(course: dict, student: str) -> None:
    rows = read_csv(course["serial"] / "grades_by_cell.csv")
    got = {r["grade_id"]: float(r["score"]) for r in rows if r["student_id"] == student}
    cells, _ = EXPECTED[student]
    assert got == {**cells, "explain": 0}  # the written answer: not graded by hand yet


def test_one_total_row_per_student(course: dict) -> None:
    rows = read_csv(course["serial"] / "grades.csv")
    assert sorted(r["student_id"] for r in rows) == sorted(EXPECTED)


@pytest.mark.parametrize("student", EXPECTED)  # one report per submission
def test_totals_flags_and_manual_grading(course: dict, student: str) -> None:
    rows = {r["student_id"]: r for r in read_csv(course["serial"] / "grades.csv")}
    cells, flags = EXPECTED[student]
    row = rows[student]
    assert row["assignment"] == "toy"
    assert float(row["score"]) == sum(cells.values())
    assert row["max_score"] == "4"  # from the source, even when nothing was handed in
    assert row["flags"] == flags
    # the written answer awaits the instructor only where a notebook was actually run
    ran = flags in ("", "timeout", "kernel-died")
    assert row["needs_manual_grade"] == ("true" if ran else "false")


def test_feedback_for_every_submission(course: dict) -> None:
    for student in EXPECTED:
        page = course["serial"] / "feedback" / student / "toy" / "toy.html"
        assert page.is_file(), student
    alice = (course["serial"] / "feedback" / "alice" / "toy" / "toy.html").read_text()
    assert "Test cell" in alice and "square(3) should be 9" in alice
    dave = (course["serial"] / "feedback" / "dave" / "toy" / "toy.html").read_text()
    assert "could not be graded" in dave


def test_course_directory_layout(course: dict) -> None:
    work = course["serial"]
    assert (work / "gradebook.db").is_file()
    assert (work / "source" / "toy" / "toy.ipynb").read_bytes() == \
        (course["root"] / "solutions" / "toy" / "toy.ipynb").read_bytes()
    assert (work / "submitted" / "alice" / "toy" / "toy.ipynb").is_file()
    assert (work / "autograded" / "carol" / "toy" / "toy.ipynb").is_file()
    assert (work / "logs" / "alice" / "toy.log").is_file()
    layout = CourseLayout(work)  # the grader's own files: under DIR/.grader/, never DIR/state/
    assert layout.state("alice", "toy").is_file() and layout.run_record().is_file()
    assert layout.template("toy").is_file() and not layout.legacy_state().exists()
    assert "graded alice/toy in" in course["proc"].stdout  # per-submission time is reported


def test_parallel_equals_serial(course: dict, parallel: Path) -> None:
    for name in ("grades.csv", "grades_by_cell.csv"):
        assert (parallel / name).read_bytes() == (course["serial"] / name).read_bytes()


def test_second_run_gives_identical_csvs(course: dict, parallel: Path) -> None:
    first = {n: (course["serial"] / n).read_bytes() for n in ("grades.csv", "grades_by_cell.csv")}
    _autograde(course["root"], course["submissions"], course["serial"], "--jobs", "2")
    for name, data in first.items():
        assert (course["serial"] / name).read_bytes() == data


def test_submitted_files_never_modified(course: dict, parallel: Path) -> None:
    assert _hashes(course["submissions"]) == course["before"]


def test_force_regrades_students_named_like_the_graders_files(course: dict,
                                                               tmp_path: Path) -> None:
    """Students named `setup.lock` and `last_run.json` (once files of the grader's next to the
    students' records) are graded like anyone; `--force --student` regrades one of them for
    real, the other is kept from the earlier run, and the hand grade of the unchanged written
    answer survives the regrade."""
    submissions, work = tmp_path / "submissions", tmp_path / "work"
    for student, nb in (("setup.lock", _submission(course["root"])),
                        ("last_run.json", _submission(course["root"], {
                            "double": "def double(x):\n    return x + 2"}))):
        (submissions / student / "toy").mkdir(parents=True)
        nbformat.write(nb, submissions / student / "toy" / "toy.ipynb")
    _autograde(course["root"], submissions, work)
    rows = {r["student_id"]: r for r in read_csv(work / "grades.csv")}
    assert (rows["setup.lock"]["score"], rows["last_run.json"]["score"]) == ("3", "2")
    assert rows["setup.lock"]["flags"] == rows["last_run.json"]["flags"] == ""
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:  # formgrader's hand grade
        grade = gb.find_grade("explain", "toy", "toy", "setup.lock")
        grade.manual_score, grade.needs_manual_grade = 1.0, False
        gb.db.commit()
    proc = _autograde(course["root"], submissions, work, "--force", "--student", "setup.lock")
    assert "graded last_run.json/toy" in proc.stdout and "(from an earlier run)" in proc.stdout
    regraded = [line for line in proc.stdout.splitlines() if "graded setup.lock/toy" in line]
    assert regraded and "(from an earlier run)" not in regraded[0]
    rows = {r["student_id"]: r for r in read_csv(work / "grades.csv")}
    assert (rows["setup.lock"]["score"], rows["setup.lock"]["needs_manual_grade"]) == (
        "4", "false")
