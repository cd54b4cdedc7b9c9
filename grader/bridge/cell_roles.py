"""The roles nbgrader gives a notebook's cells, read in one place through `nbgrader.utils`.

A cell's nbgrader metadata says what it is: an answer (`solution`), a test or a hand-graded
answer (`grade`, with `points`), a written task (`task`), a cell the student may not change
(`locked`), and its `grade_id`. Every module of the grader asks here: a cell may be an
nbformat NotebookNode or the plain JSON of a notebook read with `json` (a submitted one among
them, whose metadata may be anything), and a missing or malformed entry reads as "no role".
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader import utils


def metadata(cell) -> dict:
    """The cell's nbgrader metadata; {} when absent or not a mapping."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def _node(cell) -> NotebookNode:
    # nbgrader.utils reads cell.metadata["nbgrader"] by attribute: give it a NotebookNode
    return NotebookNode(metadata=NotebookNode(nbgrader=dict(metadata(cell))))


def is_solution(cell) -> bool:
    """An answer cell (code or a written answer)."""
    return bool(utils.is_solution(_node(cell)))


def is_grade(cell) -> bool:
    """A cell that is scored: a test cell, or a written answer graded by hand."""
    return bool(utils.is_grade(_node(cell)))


def is_task(cell) -> bool:
    return bool(utils.is_task(_node(cell)))


def is_locked(cell) -> bool:
    """A cell the student may not change (nbgrader: every grade cell that is not an answer,
    and every cell marked read-only)."""
    return bool(utils.is_locked(_node(cell)))


def is_given(cell) -> bool:
    """A read-only cell that is neither answer nor test: code the course gives."""
    return is_locked(cell) and not is_grade(cell)


def grade_id(cell) -> str | None:
    """The cell's grade_id, or None when it has none (or not a string)."""
    value = metadata(cell).get("grade_id")
    return value if isinstance(value, str) and value else None


def points(cell) -> float:
    """What a grade cell is worth (0 for any other cell, or a malformed value)."""
    try:
        return float(metadata(cell).get("points", 0) or 0)
    except (TypeError, ValueError):
        return 0.0
