"""`python -m grader export`: CSVs and feedback rewritten from the gradebook, nothing regraded.

After hand grading in nbgrader's formgrader (scores and comments go straight into the
gradebook), the instructor runs this to bring DIR/grades.csv, DIR/grades_by_cell.csv and the
feedback pages up to date. The submissions and their flags are those of the last
`python -m grader autograde` in DIR (DIR/state/last_run.json); no student code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader.autograde import GradingSettings, generate_feedback, sqlalchemy_url
from grader.course import put_venv_on_path
from grader.report import load_refused_rows, load_run_record, write_reports


def export(workdir: Path, db_url: str | None = None,
           log: Callable[[str], None] = print) -> list[tuple[str, str]]:
    """Rewrite the CSVs and regenerate each autograded submission's feedback page.

    db_url: the gradebook (default: the one the last autograde in workdir used).
    Returns the (student, assignment) pairs whose feedback could not be generated.
    """
    workdir = Path(workdir).resolve()
    recorded_url, submissions = load_run_record(workdir)
    db_url = sqlalchemy_url(db_url) or recorded_url
    put_venv_on_path()  # nbgrader's Gradebook runs `alembic` from PATH
    write_reports(db_url, workdir,
                  [(s["student_id"], s["assignment_id"], s["flags"]) for s in submissions],
                  extra=load_refused_rows(workdir))  # bad-name rows stay in grades.csv
    log(f"wrote {workdir / 'grades.csv'} and {workdir / 'grades_by_cell.csv'}")
    # feedback only renders the autograded notebook with the gradebook's scores: no sandbox
    settings = GradingSettings(workdir, db_url, sandbox=False)
    failed = []
    for s in submissions:
        if not s["autograded"]:  # its placeholder page has no scores to update
            continue
        ok, text = generate_feedback(settings, s["student_id"], s["assignment_id"])
        if ok:
            log(f"feedback {s['student_id']}/{s['assignment_id']}")
        else:
            failed.append((s["student_id"], s["assignment_id"]))
            log(f"error: feedback for {s['student_id']}/{s['assignment_id']} failed:\n"
                f"{text[-2000:]}")
    return failed
