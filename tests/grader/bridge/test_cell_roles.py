"""grader.bridge.cell_roles: nbgrader's cell roles read through nbgrader.utils, from NotebookNodes
and from plain (possibly hostile) notebook JSON alike."""

import nbformat
import pytest

from grader.bridge import cell_roles


def _cell(**nbgrader):
    return nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": nbgrader})


def test_roles_of_each_kind_of_cell():
    answer = _cell(solution=True, grade=False, locked=False, grade_id="a")
    test = _cell(solution=False, grade=True, locked=True, grade_id="t", points=2)
    given = _cell(solution=False, grade=False, locked=True, grade_id="g")
    written = _cell(solution=True, grade=True, locked=False, grade_id="w", points=3)
    task = _cell(task=True, grade=False, solution=False, locked=True, grade_id="k", points=1)
    assert [cell_roles.is_solution(c) for c in (answer, test, given, written)] == [
        True, False, False, True]
    assert [cell_roles.is_grade(c) for c in (answer, test, given, written)] == [
        False, True, False, True]
    # nbgrader: a grade cell that is not an answer is locked; an answer never is
    assert [cell_roles.is_locked(c) for c in (answer, test, given, written)] == [
        False, True, True, False]
    assert [cell_roles.is_given(c) for c in (answer, test, given, written)] == [
        False, False, True, False]
    assert cell_roles.is_task(task) and not cell_roles.is_task(answer)
    assert [cell_roles.grade_id(c) for c in (answer, test, given)] == ["a", "t", "g"]
    assert (cell_roles.points(test), cell_roles.points(written), cell_roles.points(answer)) == (
        2.0, 3.0, 0.0)


@pytest.mark.parametrize("metadata", [None, [], "x", {"nbgrader": None}, {"nbgrader": [1]},
                                      {"nbgrader": {"grade_id": ["x"], "points": "many"}}, {}])
def test_malformed_metadata_reads_as_no_role(metadata):
    cell = {"cell_type": "code", "source": "", "metadata": metadata}
    assert not cell_roles.is_solution(cell) and not cell_roles.is_grade(cell)
    assert not cell_roles.is_locked(cell) and not cell_roles.is_task(cell)
    assert cell_roles.grade_id(cell) is None and cell_roles.points(cell) == 0.0


def test_plain_json_cells_are_read_like_notebook_nodes():
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"solution": True, "grade_id": "a"}}}
    assert cell_roles.is_solution(cell) and cell_roles.grade_id(cell) == "a"
    assert cell_roles.metadata(cell) == {"solution": True, "grade_id": "a"}
