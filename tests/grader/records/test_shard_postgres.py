"""`autograde --shard K/N` against a real PostgreSQL server (tests/postgres.py), on the toy course.

One 14-submission class is graded twice: as one process (its own database on the same server),
and as 3 shard processes started at once on one shared database and one shared DIR, where
shard 0 is killed (SIGKILL, process group) after its first submission and run again. `export`
then writes the class's CSVs, which must be byte for byte the single run's: nothing lost,
nothing graded twice. About 2-4 min on the shared 2-core machine, so marked slow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat
import pytest
from conftest import REPO, copy_toy, no_sandbox_args, read_csv
from nbgrader.api import Gradebook
from postgres import postgres_server, unavailable_reason
from submissions import grader_env

from grader.bridge.course import CourseLayout
from grader.commands.autograde import sqlalchemy_url
from grader.commands.cli import main
from grader.records.shard import Shard, record_path

pytestmark = pytest.mark.slow

SHARDS = 3
WRONG_DOUBLE = "def double(x):\n    return x + 2"
DIES = "import os\n\n\ndef double(x):\n    os._exit(1)"


def _notebook(root: Path, overrides: dict[str, str] | None = None):
    """The released toy notebook with every answer solved (markers dropped), then overrides."""
    solution = nbformat.read(root / "solutions" / "toy" / "toy.ipynb", as_version=4)
    solved = {c.metadata.nbgrader["grade_id"]: "\n".join(
        line for line in c.source.splitlines() if "### " not in line)
        for c in solution.cells if c.metadata.nbgrader.get("solution")}
    solved.update(overrides or {})
    nb = nbformat.read(root / "exercises" / "toy" / "toy.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.nbgrader.get("solution"):
            cell.source = solved[cell.metadata.nbgrader["grade_id"]]
    return nb


def _write_class(root: Path, submissions: Path) -> list[str]:
    """14 students: right, wrong, dead kernel, missing and invalid notebooks (shard 0 of 3 gets
    two valid ones: the kill can fall between them)."""
    students = [f"s{i:02d}" for i in range(14)]
    for i, student in enumerate(students):
        folder = submissions / student / "toy"
        folder.mkdir(parents=True)
        if i % 10 == 7:
            (folder / "toy.ipynb").write_text("{not json")  # invalid-notebook
        elif i % 10 == 8:
            nbformat.write(_notebook(root), folder / "notes.ipynb")  # missing-notebook
        elif i == 9:
            nbformat.write(_notebook(root, {"double": DIES}), folder / "toy.ipynb")
        else:
            wrong = {"double": WRONG_DOUBLE} if i % 3 == 0 else {}
            nbformat.write(_notebook(root, wrong), folder / "toy.ipynb")
    return students


def _args(root: Path, submissions: Path, workdir: Path, db_url: str, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "grader", "autograde", str(submissions), "--workdir",
            str(workdir), "--root", str(root), "--db-url", db_url, "--cell-timeout", "6", *extra]
    return [*args, *no_sandbox_args()]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    # own session: the kill below takes the grader and every kernel it started
    return subprocess.Popen(args, cwd=REPO, env=grader_env(), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait(proc: subprocess.Popen, log: Path, timeout: float = 900) -> str:
    assert proc.wait(timeout=timeout) == 0, log.read_text()[-4000:]
    return log.read_text()


def _create_database(url: str, name: str) -> str:
    """A second database on the test server; returns its URL."""
    import psycopg2

    parsed = urlparse(url)
    host = parse_qs(parsed.query)["host"][0]
    conn = psycopg2.connect(host=host, user="postgres", dbname=parsed.path.lstrip("/"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return url.replace(parsed.path, f"/{name}", 1)


def _done(workdir: Path, students: list[str]) -> int:
    return sum(CourseLayout(workdir).state(s, "toy").is_file() for s in students)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    if unavailable_reason():
        pytest.fail(unavailable_reason())  # make test installs postgresql: this must not skip
    tmp = tmp_path_factory.mktemp("shards")
    root = tmp / "course"
    copy_toy(root)
    assert main(["release", "--root", str(root)]) == 0
    submissions = tmp / "submissions"
    students = _write_class(root, submissions)
    single, sharded = tmp / "single", tmp / "sharded"
    result = {"tmp": tmp, "single": single, "sharded": sharded, "students": students}
    with postgres_server() as url:
        single_url = _create_database(url, "single")
        # the 3 shards first, all at once; the single run afterwards (2 cores only)
        logs = [tmp / f"shard{k}.log" for k in range(SHARDS)]
        procs = [_start(_args(root, submissions, sharded, url, "--shard", f"{k}/{SHARDS}"),
                        logs[k]) for k in range(SHARDS)]
        mine = [s for s in students if Shard(0, SHARDS).owns(s, "toy")
                and (submissions / s / "toy" / "toy.ipynb").is_file()
                and (submissions / s / "toy" / "toy.ipynb").read_text().startswith("{\n")]
        deadline = time.monotonic() + 600
        while _done(sharded, mine) == 0 and procs[0].poll() is None:
            assert time.monotonic() < deadline, logs[0].read_text()
            time.sleep(0.1)
        os.killpg(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=60)
        result["done_at_kill"] = _done(sharded, mine)
        result["shard0_graded"] = len(mine)
        result["record_after_kill"] = record_path(sharded, Shard(0, SHARDS)).exists()
        for k in (1, 2):
            _wait(procs[k], logs[k])
        early = subprocess.run([sys.executable, "-m", "grader", "export", "--workdir",
                                str(sharded)], cwd=REPO, env=grader_env(), capture_output=True,
                               text=True, timeout=300)
        result["early_export"] = early
        rerun_log = tmp / "shard0-rerun.log"
        result["rerun"] = _wait(_start(_args(root, submissions, sharded, url, "--shard",
                                             f"0/{SHARDS}"), rerun_log), rerun_log)
        export = subprocess.run([sys.executable, "-m", "grader", "export", "--workdir",
                                 str(sharded), "--format", "canvas", "--jobs", "2"],
                                cwd=REPO,
                                env=grader_env(), capture_output=True, text=True, timeout=600)
        assert export.returncode == 0, export.stdout[-3000:] + export.stderr[-3000:]
        with Gradebook(sqlalchemy_url(url)) as gb:
            result["submissions"] = sorted(s.student.id for s in
                                           gb.assignment_submissions("toy"))
        single_log = tmp / "single.log"
        result["single_out"] = _wait(_start(_args(root, submissions, single, single_url),
                                            single_log), single_log)
    return result


def test_kill_happened_midway(graded: dict) -> None:
    """The kill hit shard 0 after it finished a submission and before it finished all."""
    assert graded["shard0_graded"] >= 2, "shard 0 needs 2+ notebooks to be killed midway"
    assert 1 <= graded["done_at_kill"] < graded["shard0_graded"]
    assert not graded["record_after_kill"]


def test_export_refuses_while_a_shard_is_missing(graded: dict) -> None:
    early = graded["early_export"]
    assert early.returncode == 2
    assert "0/3" in early.stderr and "have not finished" in early.stderr


def test_rerun_keeps_what_the_killed_shard_finished(graded: dict) -> None:
    assert graded["rerun"].count("(from an earlier run)") >= graded["done_at_kill"]


def test_shards_equal_single_process(graded: dict) -> None:
    for name in ("grades.csv", "grades_by_cell.csv"):
        single = (graded["single"] / name).read_text()
        assert (graded["sharded"] / name).read_text() == single, name


def test_nothing_lost_nothing_duplicated(graded: dict) -> None:
    students = graded["students"]
    rows = read_csv(graded["sharded"] / "grades.csv")
    assert [r["student_id"] for r in rows] == students
    cells = read_csv(graded["sharded"] / "grades_by_cell.csv")
    keys = [(r["student_id"], r["grade_id"]) for r in cells]
    assert len(keys) == len(set(keys)) == 3 * len(students)
    assert graded["submissions"] == students  # one gradebook submission per student
    flags = {r["student_id"]: r["flags"] for r in rows}
    assert flags["s07"] == "invalid-notebook" and flags["s08"] == "missing-notebook"
    assert flags["s09"] == "kernel-died"
    scores = {r["student_id"]: r["score"] for r in rows}
    assert scores["s00"] == "2" and scores["s01"] == "3"  # double wrong / all right


def test_export_wrote_feedback_and_canvas_file(graded: dict) -> None:
    for student in graded["students"]:
        assert (graded["sharded"] / "feedback" / student / "toy" / "toy.html").is_file()
    canvas = read_csv(graded["sharded"] / "grades_canvas.csv")
    assert canvas[0]["Student"] == "Points Possible" and canvas[0]["toy"] == "4"
    assert [r["SIS Login ID"] for r in canvas[1:]] == graded["students"]
