"""Command line: `python -m grader {release,check,autograde,similarity,collect,export,publish}`
(see `--help`)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from grader.bridge.course import ROOT_ENV, CourseLayout, Roots, pick_assignments
from grader.bridge.nbgrader_config import DEFAULT_TIMEOUT
from grader.isolation.limits import GIB, Limits
from grader.records.roster import CANVAS, MOODLE

LMS_FORMATS = ("csv", CANVAS, MOODLE)
ROOT_HELP = (f"folder holding solutions/ and exercises/ (default: ${ROOT_ENV} if set, "
             "else this repository)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # argparse would name this function: "invalid _positive_int value"
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _gigabytes(text: str) -> float:
    """A memory size in GB: a finite number above 0 (Limits checks the smallest it allows);
    `inf` would end the run with an OverflowError where the limits are made."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GB, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of GB, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    common.add_argument("--assignment", metavar="ID", default=None,
                        help="only this assignment (e.g. ex1_degradation); default: all")

    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description="Instructor tooling for the course's nbgrader assignments.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "release", parents=[common], help="solutions/ -> exercises/, then a leak check",
        description="Generate the student version exercises/<id>/<id>.ipynb of each "
        "solutions/<id>/<id>.ipynb with nbgrader's generate_assignment, then refuse "
        "(exit 1, nothing written) if any solution or hidden-test text reached it.")

    check = sub.add_parser(
        "check", parents=[common], help="solutions score full marks, releases score 0",
        description="Check that exercises/ is up to date and leak-free, that each solution "
        "gets full marks on every autograded cell, and that each released notebook handed in "
        "untouched gets 0 on every autograded cell. Exit 1 otherwise; prints per-cell results.")
    _add_grading_options(check)

    auto = sub.add_parser(
        "autograde", parents=[common], help="grade a folder of submissions",
        description="Grade SUBMISSIONS/<student_id>/<assignment_id>/<assignment_id>.ipynb "
        "with nbgrader in the course directory DIR; write DIR/grades.csv, "
        "DIR/grades_by_cell.csv and DIR/feedback/<student_id>/<assignment_id>/"
        "<assignment_id>.html. Submitted files are copied, never modified. Exit 0 when every "
        "submission was graded, whatever the scores. Without --assignment, grades each known "
        "assignment that at least one student handed in. Running it again grades only new or "
        "changed hand-ins (or all, after a change of limits, of the hidden checks or of the "
        "grader's code; a grading-error is always retried; --force regrades) and keeps hand "
        "grades given in formgrader; a hand grade stays final while the cell it judged is "
        "unchanged. DIR/nbgrader_config.py lets formgrader grade by hand there and makes "
        "nbgrader's own autograde and generate_feedback refuse (use this command and export).")
    auto.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                      help="folder of <student_id>/<assignment_id>/<assignment_id>.ipynb")
    auto.add_argument("--workdir", type=Path, required=True, metavar="DIR",
                      help="nbgrader course directory to create or update")
    auto.add_argument("--db-url", default=None, metavar="URL",
                      help="gradebook database URL (default: sqlite DIR/gradebook.db), e.g. "
                      "postgresql://user@host/grades")
    auto.add_argument("--shard", default=None, metavar="K/N",
                      help="grade only shard K of N (K = 0..N-1; a fixed split by student and "
                      "assignment), so N processes or machines share one class: give them one "
                      "--db-url and one DIR, then run `export --workdir DIR` once all finished")
    auto.add_argument("--force", action="store_true",
                      help="grade again the submissions an earlier run already graded (all of "
                      "this run's, or only those of --student); hand grades of unchanged cells "
                      "are kept")
    auto.add_argument("--student", dest="students", action="append", metavar="ID",
                      help="with --force: regrade only this student (repeatable); the rest of "
                      "the class is taken from the earlier run as usual")
    auto.add_argument("--quiet", action="store_true",
                      help="no progress bar and no line per submission; only the summary and "
                      "errors (the bar is drawn only when stderr is a terminal anyway)")
    _add_grading_options(auto)

    sim = sub.add_parser(
        "similarity", parents=[common], help="answer cells suspiciously alike (MOSS style)",
        description="Compare every answer cell handed in to DIR (by an earlier autograde) with "
        "the same cell of every other student, with the solution and with the course library, "
        "on winnowed fingerprints of normalised tokens (the syntax tree without pass, dead "
        "code and redundant wrappers, statements in a canonical order; names bound in the "
        "cell, numbers and strings canonicalised; comments, docstrings, layout, annotations "
        "and the given code left out). Write DIR/similarity.csv (student_id, assignment, "
        "cell, kind, source, source_cell, score, shared, lines, source_lines, report), highest "
        "score first, and a side-by-side HTML page per pair in DIR/similarity/ (index.html "
        "lists them). Changes no "
        "score; autograde runs the same report and flags similar-to-reference / "
        "similar-to-student in grades.csv and review.csv.")
    sim.add_argument("--workdir", type=Path, required=True, metavar="DIR",
                     help="course directory of an earlier `autograde`")
    sim.add_argument("--library", type=Path, default=None, metavar="PATH",
                     help="folder of the library's .py files to compare with (default: "
                     "ROOT/src/resnet_course)")

    coll = sub.add_parser(
        "collect", parents=[common], help="an LMS submissions download -> SUBMISSIONS",
        description="Turn the zip that Canvas (Download Submissions) or Moodle (Download all "
        "submissions) gives for one assignment into SUBMISSIONS/<student_id>/<assignment_id>/"
        "<assignment_id>.ipynb, the layout autograde reads. Each file is matched to a student "
        "through ROSTER, the LMS's own class list (Canvas: the gradebook export; Moodle: the "
        "grading worksheet, or the gradebook export, matched on full names). Every file that "
        "is not placed is reported (unmatched name, not in the roster, not a notebook, several "
        "notebooks, too large, unsafe zip member); an existing different hand-in is kept "
        "unless --replace. Zip members are read as data: never unpacked by their own names, "
        "links and '..' refused. Exit 1 if a notebook of the download was not placed.")
    coll.add_argument("download", type=Path, metavar="DOWNLOAD.zip",
                      help="the LMS's submissions zip for one assignment")
    coll.add_argument("submissions", type=Path, metavar="SUBMISSIONS",
                      help="folder to write <student_id>/<assignment_id>/ into (created)")
    coll.add_argument("--roster", type=Path, required=True, metavar="FILE",
                      help="Canvas gradebook export CSV, or Moodle grading worksheet / "
                      "gradebook export CSV (the LMS is told by its header)")
    coll.add_argument("--lms", choices=(CANVAS, MOODLE), default=None,
                      help="refuse a roster of the other LMS (default: the roster's)")
    coll.add_argument("--replace", action="store_true",
                      help="overwrite a hand-in already in SUBMISSIONS whose content differs "
                      "(default: keep it and report it)")
    coll.add_argument("--report", type=Path, default=None, metavar="FILE",
                      help="also write a CSV (member, student_id, outcome, detail) of every "
                      "file and every roster student without a hand-in")

    export = sub.add_parser(
        "export", help="rewrite CSVs and feedback from the gradebook (after hand grading)",
        description="After grading written answers by hand in nbgrader's formgrader (run in "
        "DIR), rewrite DIR/grades.csv and DIR/grades_by_cell.csv from the gradebook and "
        "regenerate DIR/feedback/<student_id>/<assignment_id>/<assignment_id>.html, so they "
        "include the hand scores and comments. Runs no notebook; covers the submissions of the "
        "last autograde in DIR, or of all N shards of the last `autograde --shard K/N` (and "
        "refuses while one has not finished). Exit 1 if a feedback page could not be "
        "generated.")
    export.add_argument("--workdir", type=Path, required=True, metavar="DIR",
                        help="course directory of an earlier `autograde`")
    export.add_argument("--db-url", default=None, metavar="URL",
                        help="gradebook database URL (default: the one that autograde used)")
    export.add_argument("--root", type=Path, default=None,
                        help=ROOT_HELP + "; accepted like the other commands: export reads "
                        "only DIR and the gradebook")
    export.add_argument("--format", dest="formats", action="append", choices=LMS_FORMATS,
                        metavar="{" + ",".join(LMS_FORMATS) + "}",
                        help="also write DIR/grades_canvas.csv (Canvas gradebook import) or "
                        "DIR/grades_moodle.csv (Moodle CSV grade import): one row per student, "
                        "one column per assignment, and beside it grades_<lms>_report.csv "
                        "(every cell left empty or student left out, and why); repeatable; "
                        "csv (default) writes only grades.csv and grades_by_cell.csv")
    export.add_argument("--roster", type=Path, default=None, metavar="FILE",
                        help="the LMS's own class list to join on: Canvas's gradebook export, "
                        "Moodle's grading worksheet or gradebook export. Every roster student "
                        "gets a row with the LMS's ids (Canvas: Student, ID, SIS User ID, SIS "
                        "Login ID, Section, and the roster's 'Title (id)' column of each "
                        "assignment); students not in it are left out and reported")
    export.add_argument("--column", dest="columns", action="append", default=[],
                        metavar="ASSIGNMENT=TITLE",
                        help="the assignment's title in the LMS where it is not the assignment "
                        "id (e.g. ex2_identity='Exercise 2'); with --roster it picks the "
                        "roster's 'Title (id)' column; repeatable")
    export.add_argument("--percent", action="store_true",
                        help="write each LMS score as a percentage, every maximum 100 (for "
                        "items the import creates: a new Moodle grade item is out of 100)")
    export.add_argument("--missing", choices=("blank", "zero"), default="blank",
                        help="the LMS cell of a roster student with no hand-in: blank (no "
                        "grade; the default) or zero")
    export.add_argument("--include-pending", action="store_true",
                        help="write the partial score of a submission whose hand grading is "
                        "pending (default: leave its LMS cell empty; always warned about)")
    export.add_argument("--final", action="store_true",
                        help="refuse (exit 1; no LMS file or feedback written) while any "
                        "submission still needs a hand grade")
    export.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                        help="render N feedback pages at once, in separate processes "
                        "(default 1)")

    publish = sub.add_parser(
        "publish", help="write the course site and the student starter tree (no answers) "
        "into DEST; --self-study adds the full source tree",
        description="Write what readers and students get, into DEST/site, DEST/starter and "
        "(with --self-study) DEST/self-study. site: the built course edition of the book "
        "(`make book` first; static HTML, ready to host). starter: the released exercise "
        "notebooks, the pinned packages they import (requirements.txt), a Makefile "
        "(`make lab`) and a student README; no course library. Neither holds any "
        "implementation of a graded object, nor solution, hidden-test or rubric text: exit 1, "
        "with nothing written, if one would. LICENSE and LICENSE-CONTENT of the repository "
        "root are copied into every output when present. Each output folder may be new, empty "
        "(but for .git) or an earlier publication: publish replaces only the files it wrote "
        "(listed in its .published-files) and keeps every other file (.git, .venv, a LICENSE "
        "or CI files added there).")
    publish.add_argument("dest", type=Path, metavar="DEST", help="folder to write")
    publish.add_argument("--site", type=Path, default=None, metavar="DIR",
                         help="the built course edition to publish (default: _build/html of "
                         "the instructor repository)")
    publish.add_argument("--self-study", action="store_true",
                         help="also write DEST/self-study, the full source tree (chapters with "
                         "paired .ipynb notebooks for Colab/Binder, and the course library). "
                         "It REVEALS the reference implementation of every graded object: "
                         "only for self-study readers, never where students of a graded "
                         "course may see it")
    publish.add_argument("--root", type=Path, default=None,
                         help=f"instructor repository to publish from (default: ${ROOT_ENV} "
                         "if set, else this repository)")
    return parser


def _add_grading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="grade N submissions at once, in separate processes (default 1)")
    p.add_argument("--cell-timeout", "--timeout", dest="timeout", type=_positive_int,
                   default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"seconds one cell may run before it is stopped and scored 0 "
                   f"(default {DEFAULT_TIMEOUT})")
    p.add_argument("--notebook-timeout", type=_positive_int, default=Limits.notebook_timeout,
                   metavar="SECONDS", help="seconds a whole notebook may run before its kernel "
                   f"is killed (default {Limits.notebook_timeout})")
    p.add_argument("--memory-gb", type=_gigabytes, default=Limits.memory_bytes / GIB, metavar="GB",
                   help="memory limit per kernel process (default "
                   f"{Limits.memory_bytes / GIB:g})")
    p.add_argument("--max-processes", type=_positive_int, default=Limits.max_processes,
                   metavar="N", help="processes + threads one notebook may have (default "
                   f"{Limits.max_processes})")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run notebooks WITHOUT isolation (no bubblewrap: they can read and write "
                   "anything you can). Only for code you trust; autograde refuses to run "
                   "unsandboxed without this flag")


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(cell_timeout=args.timeout, notebook_timeout=args.notebook_timeout,
                  memory_bytes=int(args.memory_gb * GIB), max_processes=args.max_processes)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    roots = Roots.from_root(getattr(args, "root", None))
    try:
        if args.command == "export":
            return _export(args)
        if args.command == "collect":
            return _collect(roots, args)
        if args.command == "publish":
            return _publish(roots, args)
        if args.command == "release":
            return _release(roots, args)
        if args.command == "check":
            return _check(roots, args)
        if args.command == "similarity":
            return _similarity(roots, args)
        return _autograde(roots, args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _release(roots: Roots, args: argparse.Namespace) -> int:
    from grader.commands.release import ReleaseError, release

    try:
        release(roots, pick_assignments(roots, args.assignment))
    except ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _publish(roots: Roots, args: argparse.Namespace) -> int:
    from grader.commands.publish import PublishError, publish

    try:
        publish(roots.solutions.parent, args.dest, site=args.site, self_study=args.self_study)
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _check(roots: Roots, args: argparse.Namespace) -> int:
    from grader.commands.check import check

    ok = check(roots, pick_assignments(roots, args.assignment), jobs=args.jobs,
               timeout=args.timeout, sandbox=False if args.no_sandbox else None,
               limits=_limits(args))
    return 0 if ok else 1


def _autograde(roots: Roots, args: argparse.Namespace) -> int:
    from grader.commands.autograde import autograde
    from grader.records.progress import Progress, summary
    from grader.records.shard import Shard

    shard = Shard.parse(args.shard) if args.shard else Shard()
    progress = Progress.for_terminal(quiet=args.quiet)
    start = time.monotonic()
    try:
        outcomes = autograde(args.submissions, args.workdir, roots, args.assignment,
                             jobs=args.jobs, db_url=args.db_url, timeout=args.timeout,
                             sandbox=not args.no_sandbox, limits=_limits(args), shard=shard,
                             log=progress.write, progress=progress, force=args.force,
                             force_students=args.students)
    finally:
        progress.close()
    failed = [o for o in outcomes if not o.graded]
    for line in summary(outcomes, time.monotonic() - start, progress.resumed):
        print(line)
    if shard.sharded:
        print(f"shard {shard} done; once all {shard.count} shards have finished, run "
              f"`python -m grader export --workdir {args.workdir}` for the class's CSVs")
    else:
        print(f"wrote {CourseLayout(args.workdir).grades_csv()}")
    for o in failed:
        print(f"error: could not grade {o.student_id}/{o.assignment_id} (retried by the next "
              f"run); see {CourseLayout(args.workdir).log(o.student_id, o.assignment_id)}",
              file=sys.stderr)
    return 0 if not failed else 1


def _similarity(roots: Roots, args: argparse.Namespace) -> int:
    from grader.integrity.similarity import default_library, similarity_report

    layout = CourseLayout(args.workdir)
    assignments = pick_assignments(Roots(layout.source_root(), roots.exercises),
                                   args.assignment)
    matches = similarity_report(args.workdir, assignments,
                                args.library or default_library(roots.solutions))
    print(f"{len(matches)} pair(s) of answer cells reported; wrote "
          f"{layout.similarity_csv()} and {layout.similarity_pages() / 'index.html'}")
    return 0


def _collect(roots: Roots, args: argparse.Namespace) -> int:
    from grader.records.collect import run

    if args.assignment is None:
        raise ValueError("collect needs --assignment ID (one download holds one assignment)")
    assignment = pick_assignments(roots, args.assignment)[0]
    return run(args.download, args.roster, assignment, args.submissions, lms=args.lms,
               replace=args.replace, report=args.report)


def _assignment_titles(pairs: list[str]) -> dict[str, str]:
    titles = {}
    for pair in pairs:
        assignment, sep, title = pair.partition("=")
        if not sep or not assignment.strip() or not title.strip():
            raise ValueError(f"--column {pair!r}: expected ASSIGNMENT=TITLE")
        titles[assignment.strip()] = title.strip()
    return titles


def _export(args: argparse.Namespace) -> int:
    from grader.commands.export import ExportRefused, export

    try:
        failed = export(args.workdir, db_url=args.db_url,
                        formats=tuple(args.formats or ["csv"]), jobs=args.jobs,
                        roster=args.roster, missing=args.missing,
                        include_pending=args.include_pending, final=args.final,
                        columns=_assignment_titles(args.columns), percent=args.percent)
    except ExportRefused as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for student_id, assignment_id in failed:
        print(f"error: no feedback for {student_id}/{assignment_id}", file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
