"""nbgrader's own grading steps in DIR (the course directory `autograde` writes) refuse.

In DIR, `nbgrader autograde` (formgrader's Autograde button) would run student code outside the
grader's sandbox and score it without the trusted verdicts, and `nbgrader generate_feedback
--force` (formgrader's Generate Feedback button) would rewrite a feedback page without the
grader's "Checked by the grader" lines. DIR/nbgrader_config.py makes both refuse, naming the
grader command to use, with nothing written, removed or run; formgrader's manual grading (the
gradebook through nbgrader's API) keeps working.

Driven as an instructor would: nbgrader's CLI and nbgrader's Python API (what formgrader's
buttons call), each in a subprocess with cwd=DIR. No kernel starts (four subprocesses of
nbgrader, 4-5 s of CPU each; 13 s each on the loaded 2-core machine, so marked slow).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from submissions import grader_env
from toy_gradebook import AID, add_submission, grade_meta, make_course, source_notebook

from grader.bridge.course import CourseLayout
from grader.bridge.nbgrader_config import config_file_text

pytestmark = pytest.mark.slow  # subprocesses of nbgrader; the in-process test of the same
# config is
# tests/grader/bridge/test_nbgrader_config.py::test_config_file_refuses_nbgraders_grading_steps

NBGRADER = Path(sys.executable).parent / "nbgrader"
PAGE = "<html><body>[grader] Checked by the grader on your code: this cell failed.</body></html>"


def _tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under root (the gradebook included)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def course_dir(tmp_path: Path) -> Path:
    """DIR as autograde leaves it for ann: gradebook rows, submitted and autograded notebooks,
    her feedback page with the grader's lines, and DIR/nbgrader_config.py. Her answer cell
    would leave a marker file next to DIR if any kernel ran it."""
    work = tmp_path / "work"
    url = make_course(work)
    add_submission(url, "ann", {"test_b": 2.0, "test_a": 0.0})
    layout = CourseLayout(work)
    handed_in = source_notebook()
    marker = tmp_path / "student-code-ran"
    handed_in.cells.insert(0, new_code_cell(f"open({str(marker)!r}, 'w').write('ran')",
                                            metadata=grade_meta("answer_code", 0, True)))
    for path, nb in ((layout.submitted_notebook("ann", AID), handed_in),
                     (layout.autograded_notebook("ann", AID), source_notebook())):
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    page = layout.feedback_page("ann", AID)
    page.parent.mkdir(parents=True)
    page.write_text(PAGE)
    layout.nbgrader_config().write_text(config_file_text(work, url), encoding="utf-8")
    return work


def _nbgrader(course_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(NBGRADER), *args], cwd=course_dir, env=grader_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("step, command", [
    ("autograde", "python -m grader autograde SUBMISSIONS --workdir"),
    ("generate_feedback", "python -m grader export --workdir"),
])
def test_nbgrader_cli_refuses_and_changes_nothing(course_dir: Path, step: str, command: str):
    before = _tree(course_dir)
    proc = _nbgrader(course_dir, step, AID, "--force")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "refused in this course directory" in out and command in out, out
    assert f"--workdir {course_dir}" in out  # the command names this DIR
    assert _tree(course_dir) == before  # the feedback page, notebooks and gradebook as they were
    assert not (course_dir.parent / "student-code-ran").exists()


def test_formgrader_api_refuses_and_manual_grading_works(course_dir: Path):
    """What formgrader's buttons call (NbGraderAPI, configured from DIR's config file as the
    formgrader extension loads it), and the gradebook data its manual grading pages use."""
    script = textwrap.dedent(f"""
        import json
        from nbgrader.apps import NbGrader
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory

        app = NbGrader()
        app.load_config_file()  # DIR/nbgrader_config.py, from the working directory
        coursedir = CourseDirectory(parent=app)
        api = NbGraderAPI(coursedir, Authenticator(parent=app), parent=app)
        auto = api.autograde({AID!r}, "ann")
        feedback = api.generate_feedback({AID!r}, "ann")
        submission = api.get_submission({AID!r}, "ann")
        print(json.dumps({{"auto": auto, "feedback": feedback, "submission": submission}},
                         default=str))
    """)
    before = _tree(course_dir)
    proc = subprocess.run([sys.executable, "-c", script], cwd=course_dir, env=grader_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, command in (("auto", "grader autograde"), ("feedback", "grader export")):
        assert result[key]["success"] is False
        assert command in result[key].get("log", ""), result[key]
    # manual grading: the submission with its scores, needing a hand grade of the written answer
    submission = result["submission"]
    assert submission["student"] == "ann" and submission["needs_manual_grade"] is True
    assert (submission["score"], submission["max_score"]) == (2.0, 6.5)
    assert _tree(course_dir) == before
    assert not (course_dir.parent / "student-code-ran").exists()


def test_without_the_refusal_nbgrader_rewrites_the_page(course_dir: Path):
    """The control: the same DIR with the refusal line taken out of its config file, and
    nbgrader's generate_feedback --force removes the page before it writes its own (without
    the grader's lines, or none at all when it fails on the toy gradebook)."""
    config = CourseLayout(course_dir).nbgrader_config()
    text = config.read_text(encoding="utf-8")
    assert "\nrefuse_nbgrader_grading(c)\n" in text
    config.write_text(text.replace("\nrefuse_nbgrader_grading(c)\n", "\n"), encoding="utf-8")
    proc = _nbgrader(course_dir, "generate_feedback", AID, "--force")
    page = CourseLayout(course_dir).feedback_page("ann", AID)
    assert not page.exists() or "Checked by the grader" not in page.read_text(), \
        proc.stdout + proc.stderr
