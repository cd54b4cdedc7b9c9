"""grader.bridge.course: CourseLayout spells every path in DIR, and a real autograde writes nothing
else there (the toy course, graded once per session by conftest's graded_toy_course)."""

from pathlib import Path

import pytest
from conftest import read_csv

from grader.bridge.course import CourseLayout


def _top(layout: CourseLayout, path: Path) -> str:
    return path.relative_to(layout.root).parts[0]


def test_the_graders_own_files_live_where_no_student_id_can():
    layout = CourseLayout(Path("/course"))
    own = [layout.run_record(), layout.setup_lock(), layout.shard_record(2, 0),
           layout.state("setup.lock", "toy"), layout.template("toy")]
    assert {_top(layout, p) for p in own} == {CourseLayout.GRADER}
    # a student named like a file of the grader's gets a folder beside it, not on it
    assert layout.state("setup.lock", "toy") != layout.setup_lock()
    assert layout.submitted("last_run.json", "toy") != layout.run_record()


@pytest.mark.slow
def test_autograde_writes_only_the_paths_course_layout_spells(graded_toy_course):
    layout = CourseLayout(graded_toy_course["work"])
    sid, aid = "ann", "toy"
    spelled = [layout.grades_csv(), layout.cells_csv(), layout.review_csv(), layout.gradebook(),
               layout.nbgrader_config(), layout.grader_files(), layout.source(aid),
               layout.released(aid), layout.submitted(sid, aid), layout.autograded(sid, aid),
               layout.feedback_page(sid, aid), layout.log(sid, aid), layout.review_note(sid, aid),
               layout.similarity_csv(), layout.similarity_pages()]
    names = {_top(layout, p) for p in spelled}
    written = {p.name for p in layout.root.iterdir()}
    assert written <= names | {f"{CourseLayout.GRADEBOOK}-journal"}, written - names
    assert layout.autograded_notebook(sid, aid).is_file()
    assert layout.feedback_page(sid, aid).is_file()
    (row,) = read_csv(layout.grades_csv())
    assert (row["student_id"], row["score"], row["max_score"]) == (sid, "3", "4")
    assert [r["grade_id"] for r in read_csv(layout.cells_csv())]  # notebook order, non-empty
