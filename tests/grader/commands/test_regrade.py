"""autograde's bookkeeping without a kernel: --force and --student, a grading-error retried,
students whose names were the grader's own files, and a course directory of an older grader.

`grade_one` (nbgrader in a sandbox, seconds per submission) is replaced by a stand-in that does
what it leaves behind: gradebook rows as nbgrader writes them (autograded scores, every written
answer marked "needs manual grade" again), the feedback page, and the resume record through the
real grader.records.resume. Everything else is autograde's own code: staging, resume, hand grades,
the setup lock, the run record and the CSVs. The assignment is tests/fixtures/toy, registered with
nbgrader's generate_assignment once per module (no kernel) and copied for each test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import TOY, copy_toy, read_csv

import grader.commands.autograde as autograde_module
from grader.bridge.course import CourseLayout, Roots
from grader.bridge.gradebook import open_gradebook
from grader.commands.cli import main
from grader.records import flags as flag_names
from grader.records import resume
from grader.records.report import load_run_record
from grader.records.shard import load_class_record

AID = "toy"
WRITTEN = "explain"  # the toy's written answer, graded by hand
# the grader's own files and folders in DIR/state/ before DIR/.grader/, as student ids
COLLIDING = ["setup.lock", "last_run.json", "shards", "state", "templates"]


class FakeGrading:
    """Stands in for grade_one; `fail` names students whose grading fails (grading-error)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: set[str] = set()

    def __call__(self, settings, student_id: str, assignment_id: str):
        self.calls.append(student_id)
        with open_gradebook(settings.db_url) as gb:
            submission = gb.update_or_create_submission(assignment_id, student_id)
            for grade in (g for nb in submission.notebooks for g in nb.grades):
                if grade.cell.cell_type == "code":
                    grade.auto_score = grade.max_score
                if grade.cell.cell_type == "markdown" or grade.manual_score is not None:
                    grade.needs_manual_grade = True  # what nbgrader's autograde does
            gb.db.commit()
        page = CourseLayout(settings.course_root).feedback_page(student_id, assignment_id)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<html>{student_id}</html>")
        failed = student_id in self.fail
        outcome = autograde_module.Outcome(
            student_id, assignment_id, [flag_names.GRADING_ERROR] if failed else [],
            autograded=not failed, problem="the grader failed" if failed else "")
        if outcome.graded:
            resume.mark_done(settings, student_id, assignment_id, outcome)
        return outcome


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> dict:
    """The toy course, ann's hand-in, and a DIR where the assignment is registered."""
    tmp = tmp_path_factory.mktemp("regrade")
    root = tmp / "course"
    copy_toy(root)
    submissions = tmp / "submissions"
    _hand_in(root, submissions, "ann")
    work = tmp / "work"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(autograde_module, "grade_one", FakeGrading())
        autograde_module.autograde(submissions, work, Roots.from_root(root), sandbox=False,
                                   similarity=False, log=lambda line: None)
    return {"root": root, "work": work}


def _hand_in(root: Path, submissions: Path, student: str) -> None:
    folder = submissions / student / AID
    folder.mkdir(parents=True)
    shutil.copyfile(root / "solutions" / AID / f"{AID}.ipynb", folder / f"{AID}.ipynb")


@pytest.fixture
def course(registered: dict, tmp_path: Path, monkeypatch):
    """(run(**autograde options) -> outcomes, fake grading, work, submissions): a fresh copy
    of the registered DIR, with hand-ins of ann, bo and the students of COLLIDING."""
    work, submissions = tmp_path / "work", tmp_path / "submissions"
    shutil.copytree(registered["work"], work)
    for student in ["ann", "bo", *COLLIDING]:
        _hand_in(registered["root"], submissions, student)
    fake = FakeGrading()
    monkeypatch.setattr(autograde_module, "grade_one", fake)

    def run(**options):
        fake.calls.clear()
        return autograde_module.autograde(submissions, work, Roots.from_root(registered["root"]),
                                          sandbox=False, similarity=False,
                                          log=lambda line: None, **options)

    return run, fake, work, submissions


def _grades(work: Path) -> dict[str, dict]:
    return {row["student_id"]: row for row in read_csv(work / "grades.csv")}


def test_students_named_like_the_graders_files_are_graded(course):
    run, fake, work, _ = course
    outcomes = run()
    assert sorted(fake.calls) == sorted(["ann", "bo", *COLLIDING])
    assert all(o.graded and not o.flags for o in outcomes)
    grades = _grades(work)
    assert set(grades) == {"ann", "bo", *COLLIDING}
    assert all(float(g["score"]) == 3.0 for g in grades.values())  # both test cells
    layout = CourseLayout(work)
    for student in COLLIDING:
        assert layout.state(student, AID).is_file()
    assert layout.setup_lock().is_file() and layout.run_record().is_file()
    assert len(load_run_record(work)[1]) == 2 + len(COLLIDING)
    assert not layout.legacy_state().exists()
    run()  # and they resume like everyone else
    assert fake.calls == []


def test_force_regrades_everyone_and_student_narrows_it(course):
    run, fake, _, _ = course
    run()
    run(force=True)
    assert sorted(fake.calls) == sorted(["ann", "bo", *COLLIDING])
    run(force=True, force_students=["bo", "setup.lock"])
    assert sorted(fake.calls) == ["bo", "setup.lock"]
    run()
    assert fake.calls == []


def test_student_needs_force_and_a_known_student(course):
    run, fake, work, _ = course
    before = (work / "grades.csv").read_bytes()  # the module fixture's run: ann only
    with pytest.raises(ValueError, match="add --force"):
        run(force_students=["ann"])
    with pytest.raises(ValueError, match="nothing to regrade for zed: no such folder"):
        run(force=True, force_students=["zed"])
    assert fake.calls == []
    assert (work / "grades.csv").read_bytes() == before  # refused before anything was graded


def test_force_keeps_hand_grades_of_unchanged_cells(course):
    run, _, work, _ = course
    run()
    with open_gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:  # formgrader's hand grade
        grade = gb.find_grade(WRITTEN, AID, AID, "ann")
        grade.manual_score, grade.needs_manual_grade = 1.0, False
        gb.db.commit()
    run()  # the CSVs from the gradebook
    assert float(_grades(work)["ann"]["score"]) == 4.0
    run(force=True, force_students=["ann"])
    with open_gradebook(f"sqlite:///{work / 'gradebook.db'}") as gb:
        grade = gb.find_grade(WRITTEN, AID, AID, "ann")
        assert (grade.manual_score, grade.needs_manual_grade) == (1.0, False)
    assert float(_grades(work)["ann"]["score"]) == 4.0


def test_a_grading_error_is_retried_not_cached(course):
    run, fake, work, _ = course
    run()  # bo graded fine, then a forced regrade of bo fails
    fake.fail = {"bo"}
    outcomes = {o.student_id: o for o in run(force=True, force_students=["bo"])}
    assert not outcomes["bo"].graded
    assert not CourseLayout(work).state("bo", AID).exists()  # the earlier result is gone too
    fake.fail = set()
    outcomes = {o.student_id: o for o in run()}
    assert fake.calls == ["bo"] and outcomes["bo"].graded  # retried, without --force
    run()
    assert fake.calls == []


def test_a_fixed_hidden_check_regrades_everyone(course, monkeypatch):
    run, fake, _, _ = course
    run()
    monkeypatch.setattr(resume, "grader_code_version", lambda: "another grader")
    run()
    assert sorted(fake.calls) == sorted(["ann", "bo", *COLLIDING])


def test_an_older_course_directory_is_migrated(course):
    """DIR/state/ of an older grader: the run record moves to DIR/.grader/ (export needs it),
    the old resume records are dropped (everyone is graded again once), DIR/state/ goes."""
    run, fake, work, _ = course
    run()
    layout = CourseLayout(work)
    legacy = layout.legacy_state()
    (legacy / "ann").mkdir(parents=True)
    (legacy / "ann" / f"{AID}.json").write_text("{}")
    (legacy / ".templates").mkdir()
    record = json.loads(layout.run_record().read_text())
    shutil.rmtree(layout.grader_files())
    (legacy / "last_run.json").write_text(json.dumps(record))
    (legacy / "setup.lock").write_text("")
    assert load_class_record(work)[1] == record["submissions"]  # what export reads
    assert not legacy.exists() and layout.run_record().is_file()
    legacy.mkdir()
    (legacy / "last_run.json").write_text(json.dumps(record))
    run()
    assert sorted(fake.calls) == sorted(["ann", "bo", *COLLIDING])
    assert not legacy.exists()


def test_a_legacy_state_that_is_a_link_is_refused(course, tmp_path: Path):
    run, fake, work, _ = course
    run()
    (tmp_path / "elsewhere").mkdir()
    CourseLayout(work).legacy_state().symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="not the folder an earlier autograde wrote"):
        run()
    assert (tmp_path / "elsewhere").is_dir()


def test_a_legacy_state_with_foreign_files_is_left_alone(course):
    run, fake, work, _ = course
    run()
    legacy = CourseLayout(work).legacy_state()
    (legacy / "ann").mkdir(parents=True)
    (legacy / "ann" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="did not write"):
        run()
    assert (legacy / "ann" / "notes.txt").read_text() == "mine"


def test_cli_student_without_force_exits_2(course, capsys):
    _, fake, work, submissions = course
    code = main(["autograde", str(submissions), "--workdir", str(work), "--root",
                 str(TOY), "--no-sandbox", "--student", "ann"])
    assert code == 2 and "add --force" in capsys.readouterr().err
    assert fake.calls == []
