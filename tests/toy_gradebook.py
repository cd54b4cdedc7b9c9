"""A small nbgrader course directory with an SQLite gradebook, built in a temporary folder
without running nbgrader's converters or a kernel (for the kernel-free unit tests).

One assignment `toy` with one notebook `toy` of three graded cells, in this notebook order:
`test_b` (autograded, 2 points), `answer_text` (a written answer, 3 points, graded by hand),
`test_a` (autograded, 1.5 points). The source notebook is written to DIR/source/toy/toy.ipynb
so that the CSVs can order rows by notebook position (test_b comes before test_a).

nbgrader creates a new gradebook by asking the `alembic` executable for its version (seconds on
a busy machine), so the empty course gradebook is made once per process and copied.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.bridge.course import put_venv_on_path
from grader.bridge.gradebook import open_gradebook

AID = "toy"
CELLS = [  # grade_id, cell type, points, autograded
    ("test_b", "code", 2.0, True),
    ("answer_text", "markdown", 3.0, False),
    ("test_a", "code", 1.5, True),
]
MAX_SCORE = sum(points for _, _, points, _ in CELLS)


def grade_meta(grade_id: str, points: float, solution: bool = False) -> dict:
    return {"nbgrader": {"grade": True, "grade_id": grade_id, "points": points,
                         "solution": solution, "locked": not solution,
                         "schema_version": 3}}


def source_notebook() -> nbformat.NotebookNode:
    cells = []
    for grade_id, cell_type, points, _ in CELLS:
        make = new_code_cell if cell_type == "code" else new_markdown_cell
        cells.append(make(f"# {grade_id}", metadata=grade_meta(grade_id, points,
                                                               cell_type == "markdown")))
    return new_notebook(cells=cells)


@functools.cache
def _template() -> Path:
    """A gradebook with the assignment's cells and no submissions (made once per process)."""
    put_venv_on_path()  # nbgrader's Gradebook runs `alembic`
    path = Path(tempfile.mkdtemp(prefix="toy-gradebook-")) / "gradebook.db"
    with open_gradebook(f"sqlite:///{path}") as gb:
        gb.update_or_create_assignment(AID)
        gb.add_notebook(AID, AID)
        for grade_id, cell_type, points, _ in CELLS:
            gb.add_grade_cell(grade_id, AID, AID, max_score=points, cell_type=cell_type)
    return path


def make_course(root: Path) -> str:
    """DIR/source/toy/toy.ipynb and DIR/gradebook.db with the assignment's cells; the db url."""
    path = root / "source" / AID / f"{AID}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(source_notebook(), path)
    shutil.copyfile(_template(), root / "gradebook.db")
    put_venv_on_path()
    return f"sqlite:///{root / 'gradebook.db'}"


def add_submission(url: str, student_id: str, auto: dict[str, float],
                   manual: dict[str, float] | None = None,
                   confirmed: bool = True) -> None:
    """A graded submission: autograded scores `auto` (grade_id -> points; the written answer
    gets none and needs a hand grade), and hand grades `manual` (confirmed: needs_manual_grade
    cleared, as formgrader does)."""
    with open_gradebook(url) as gb:
        gb.update_or_create_student(student_id)
        gb.add_submission(AID, student_id)
        for grade_id, _, _, autograded in CELLS:
            grade = gb.find_grade(grade_id, AID, AID, student_id)
            grade.auto_score = auto.get(grade_id) if autograded else None
            grade.needs_manual_grade = not autograded
            if manual and grade_id in manual:
                grade.manual_score = manual[grade_id]
                grade.needs_manual_grade = not confirmed
        gb.db.commit()


def grade_row(url: str, student_id: str, grade_id: str) -> tuple:
    """(auto_score, manual_score, needs_manual_grade) of one cell as the gradebook holds it."""
    with open_gradebook(url) as gb:
        g = gb.find_grade(grade_id, AID, AID, student_id)
        return g.auto_score, g.manual_score, bool(g.needs_manual_grade)
