"""`python -m grader export`: CSVs and feedback rewritten from the gradebook, nothing regraded.

After hand grading in nbgrader's formgrader (scores and comments go straight into the
gradebook), the instructor runs this to bring DIR/grades.csv, DIR/grades_by_cell.csv and the
feedback pages up to date. The submissions and their flags are those of the last
`python -m grader autograde` in DIR (DIR/.grader/last_run.json); no student code runs.
With `--format canvas|moodle` it also writes the LMS's import file (grader.records.lms_export),
joined on the class roster when one is given; it warns while hand grading is pending, and `--final`
refuses until none is.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from grader.bridge.course import CourseLayout, put_venv_on_path
from grader.commands.autograde import GradingSettings, generate_feedback, sqlalchemy_url
from grader.records.lms_export import (
    FILES,
    MOODLE,
    MOODLE_MAP_TO,
    Grade,
    Options,
    build_table,
    check_roster_fits,
    column_warnings,
    describe,
    read_grades,
    report_path,
    write_lms_file,
)
from grader.records.report import refused_rows_from, write_reports, write_review_list
from grader.records.roster import read_roster
from grader.records.shard import load_class_record, load_class_refused


def export(workdir: Path, db_url: str | None = None, log: Callable[[str], None] = print,
           formats: tuple[str, ...] = ("csv",), jobs: int = 1, roster: Path | None = None,
           missing: str = "blank", include_pending: bool = False, final: bool = False,
           columns: dict[str, str] | None = None,
           percent: bool = False) -> list[tuple[str, str]]:
    """Rewrite the CSVs and regenerate each autograded submission's feedback page.

    db_url: the gradebook (default: the one the last autograde in workdir used).
    After `autograde --shard K/N`, covers the submissions of all N shards (grader.records.shard).
    formats: "canvas" and "moodle" also write an LMS import file (grader.records.lms_export), joined
    on `roster` (the LMS's own export, grader.records.roster) when given; `missing` ("blank"/"zero")
    fills a roster student's missing hand-in; include_pending writes the partial score of a
    submission still waiting for a hand grade (default: left empty, and reported); columns
    names an assignment's title in the LMS where it is not the assignment id; percent writes
    every LMS score out of 100.
    final: refuse (ExportRefused, no LMS file or feedback written) while any hand grade is
    pending.
    jobs: feedback pages rendered at once, in separate processes (a large class: ~1 s each).
    Returns the (student, assignment) pairs whose feedback could not be generated.
    """
    workdir = Path(workdir).resolve()
    lms_formats = [f for f in formats if f in FILES]
    if roster and not lms_formats:
        raise ValueError("--roster is for the LMS files: add --format canvas or --format moodle")
    the_roster = read_roster(Path(roster)) if roster else None
    for fmt in lms_formats:  # before anything is written
        check_roster_fits(fmt, the_roster)
    recorded_url, submissions = load_class_record(workdir)
    refused = refused_rows_from(load_class_refused(workdir))
    db_url = sqlalchemy_url(db_url) or recorded_url
    put_venv_on_path()  # nbgrader's Gradebook runs `alembic` from PATH
    write_reports(db_url, workdir,
                  [(s["student_id"], s["assignment_id"], s["flags"]) for s in submissions],
                  extra=refused)  # bad-name rows stay in grades.csv
    write_review_list(workdir, [(s["student_id"], s["assignment_id"], ";".join(s["flags"]))
                                for s in submissions if s["flags"]]
                      + [(g.student_id, g.assignment, ";".join(g.flags)) for g in refused])
    layout = CourseLayout(workdir)
    log(f"wrote {layout.grades_csv()} and {layout.cells_csv()}")
    grades = read_grades(workdir)
    _check_pending(grades, final, log)
    for assignment in sorted(set(columns or {}) - {g.assignment for g in grades}):
        log(f"warning: --column {assignment}=...: no such assignment in grades.csv")
    for fmt in lms_formats:
        _write_lms(fmt, workdir, db_url, grades,
                   Options(the_roster, missing, include_pending, columns=columns or {},
                           percent=percent), log)
    # feedback only renders the autograded notebook with the gradebook's scores: no sandbox
    settings = GradingSettings(workdir, db_url, sandbox=False)
    failed = []
    # placeholder pages (not autograded) have no scores to update
    pairs = [(s["student_id"], s["assignment_id"]) for s in submissions if s["autograded"]]
    for (student_id, assignment_id), (ok, text) in zip(pairs, _feedback(settings, pairs, jobs),
                                                        strict=True):
        if ok:
            log(f"feedback {student_id}/{assignment_id}")
        else:
            failed.append((student_id, assignment_id))
            log(f"error: feedback for {student_id}/{assignment_id} failed:\n{text[-2000:]}")
    return failed


class ExportRefused(ValueError):
    """`export --final` while hand grading is pending."""


def _check_pending(grades: list[Grade], final: bool, log: Callable[[str], None]) -> None:
    pending = [f"{g.student_id}/{g.assignment}" for g in grades if g.pending]
    if not pending:
        return
    listed = ", ".join(pending[:20]) + (", ..." if len(pending) > 20 else "")
    if final:
        raise ExportRefused(
            f"--final: hand grading is pending for {len(pending)} submission(s) ({listed}); "
            "grade them in formgrader, then export again (no LMS file or feedback written)")
    log(f"warning: hand grading is pending for {len(pending)} submission(s) "
        f"(needs_manual_grade=true in grades.csv): {listed}")


def _write_lms(fmt: str, workdir: Path, db_url: str, grades: list[Grade], options: Options,
               log: Callable[[str], None]) -> None:
    if options.roster is None:
        from grader.bridge.gradebook import student_names

        names = student_names(db_url, {g.student_id for g in grades})
        options = Options(None, options.missing, options.include_pending,
                          columns=options.columns, names=names, percent=options.percent)
        if fmt == MOODLE:
            log("warning: no --roster: every student id becomes a Moodle username row, and "
                "Moodle aborts the whole import if one of them is unknown to it")
    table = build_table(grades, options)
    path = write_lms_file(fmt, CourseLayout(workdir).lms_file(FILES[fmt]), table, options.roster)
    log(f"wrote {path} ({fmt} import; {len(table.students)} student(s); problems listed in "
        f"{report_path(path).name})")
    if fmt == MOODLE and options.roster is not None:
        column = options.roster.id_column
        log(f"in Moodle's CSV import, map {column!r} to {MOODLE_MAP_TO.get(column, column)!r} "
            "and each '(maximum grade)' column to Ignore")
    for problem in options.roster.problems if options.roster else []:
        log(f"warning: roster row left out: {problem}")
    for line in describe(table, options.include_pending) + column_warnings(table,
                                                                           options.roster):
        log(line)


def _feedback(settings: GradingSettings, pairs: list[tuple[str, str]],
              jobs: int) -> Iterator[tuple[bool, str]]:
    """generate_feedback for each pair, in order; `jobs` processes at a time."""
    if jobs == 1:
        yield from (generate_feedback(settings, s, a) for s, a in pairs)
        return
    # spawn: a fresh interpreter per worker, as autograde's workers
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(generate_feedback, [settings] * len(pairs),
                            [s for s, _ in pairs], [a for _, a in pairs])
