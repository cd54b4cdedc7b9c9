"""`autograde --shard K/N`: N processes or machines share one class through one gradebook.

* Which submissions a shard grades: (student, assignment) pairs split by a stable hash
  (sha256, not Python's salted `hash`), so every shard computes the same split on any machine
  and each pair belongs to exactly one of the N shards. K counts from 0, like Kubernetes'
  JOB_COMPLETION_INDEX and a Slurm array started at 0.
* What shards must not do at once: register the assignment (DIR/source, DIR/release and the
  gradebook's assignment rows) and add students to the gradebook. `setup_lock` serialises
  those steps: a PostgreSQL advisory lock when the gradebook is PostgreSQL (the one thing every
  shard shares for certain), else an flock on DIR/.grader/setup.lock (one machine, SQLite).
* What a shard leaves: DIR/.grader/shards/<N>/<K>.json, its submissions and flags. `grader export`
  joins the N records (refusing while one is missing) and writes the class's CSVs from the
  gradebook; a single unsharded run leaves DIR/.grader/last_run.json instead
  (grader.records.report). (Paths spelled by grader.bridge.course.CourseLayout.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.bridge import gradebook
from grader.bridge.course import CourseLayout, migrate_legacy_state
from grader.records.report import load_run_record

# any constant int64 that no other program on the gradebook's server uses as an advisory key
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"resnet-course-grader setup").digest()[:7], "big")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count); Shard(0, 1) is the whole class."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"--shard {self.index}/{self.count}: need 0 <= K < N "
                             "(K counts from 0, e.g. 0/3, 1/3, 2/3)")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """'K/N' -> Shard(K, N); ValueError with the expected form otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/3 (K counts from 0)")
        return cls(int(match[1]), int(match[2]))

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, student_id: str, assignment_id: str) -> bool:
        return shard_of(student_id, assignment_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE_CLASS = Shard()


def shard_of(student_id: str, assignment_id: str, count: int) -> int:
    """The shard (0..count-1) that grades this submission, the same in every process."""
    digest = hashlib.sha256(f"{student_id}\0{assignment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@contextmanager
def setup_lock(workdir: Path, db_url: str) -> Iterator[None]:
    """Hold the class-wide setup lock (blocks while another shard holds it)."""
    if db_url.startswith("postgresql"):
        with _advisory_lock(db_url):
            yield
        return
    path = CourseLayout(Path(workdir)).setup_lock()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:  # the lock goes with the file descriptor, also on a kill
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(db_url: str) -> Iterator[None]:
    # session-level lock: released by unlock, or by the server when a killed shard's
    # connection drops, so a kill never leaves the class locked
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(db_url)
    try:
        try:
            conn = engine.connect()
        except OperationalError as err:
            shown = make_url(db_url).render_as_string(hide_password=True)
            raise ValueError(f"cannot reach the gradebook {shown}: {err.orig}") from None
        with conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
    finally:
        engine.dispose()


def already_registered(solutions: Path, workdir: Path, db_url: str, assignment_id: str) -> bool:
    """DIR/source/<id> equals solutions/<id> byte for byte, DIR/release/<id> exists and the
    gradebook knows the assignment: registering again would change nothing, and would rewrite
    files and rows that shards already grading are reading."""
    layout = CourseLayout(Path(workdir))
    src, dest = Path(solutions) / assignment_id, layout.source(assignment_id)
    if not layout.released_notebook(assignment_id).is_file():
        return False
    if _tree_bytes(src) != _tree_bytes(dest):
        return False
    return gradebook.assignment_registered(db_url, assignment_id)


def _tree_bytes(root: Path) -> dict[str, bytes] | None:
    """relative path -> bytes of every regular file, as replace_tree copies them."""
    if not root.is_dir():
        return None
    skip = {".ipynb_checkpoints", "__pycache__"}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and not skip & set(p.relative_to(root).parts)}


def record_path(workdir: Path, shard: Shard) -> Path:
    return CourseLayout(Path(workdir)).shard_record(shard.count, shard.index)


def save_shard_record(workdir: Path, db_url: str, shard: Shard, submissions: list[dict],
                      refused: list[dict] = ()) -> Path:
    """What this shard graded (as grader.records.report.save_run_record, one file per shard);
    refused: the 0-point rows of folders with unsafe names (every shard sees the same ones)."""
    path = record_path(workdir, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"db_url": db_url, "shard": str(shard),
                               "submissions": submissions, "refused": list(refused)},
                              indent=1), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a killed shard leaves no record or a whole one
    return path


def _class_records(workdir: Path) -> list[dict]:
    """The run records that describe the whole class: the newest of the last unsharded run and
    the last sharded run (all N shard records of the newest N). ValueError when neither exists
    or a shard of the newest sharded run has not finished."""
    workdir = Path(workdir)
    migrate_legacy_state(workdir)  # a course directory of an older grader: records move
    layout = CourseLayout(workdir)
    groups = [d for d in layout.shard_groups().glob("*") if d.is_dir() and d.name.isdigit()]
    newest = {d: max((p.stat().st_mtime for p in d.glob("*.json")), default=None)
              for d in groups}
    newest = {d: t for d, t in newest.items() if t is not None}
    single = layout.run_record()
    if not newest or (single.exists() and single.stat().st_mtime >= max(newest.values())):
        load_run_record(workdir)  # a clear ValueError when there is no finished run
        return [json.loads(single.read_text(encoding="utf-8"))]
    group = max(newest, key=newest.get)
    count = int(group.name)
    missing = [k for k in range(count) if not (group / f"{k}.json").is_file()]
    if missing:
        raise ValueError(f"shard(s) {', '.join(f'{k}/{count}' for k in missing)} of {workdir} "
                         f"have not finished (no {group}/<K>.json): run them, then export")
    return [json.loads((group / f"{k}.json").read_text(encoding="utf-8")) for k in range(count)]


def load_class_record(workdir: Path) -> tuple[str, list[dict]]:
    """(db_url, submissions) of the whole class (see _class_records for which runs count)."""
    records = _class_records(workdir)
    db_url = next((r["db_url"] for r in records if r.get("db_url")), None)
    submissions = {(s["student_id"], s["assignment_id"]): s
                   for r in records for s in r["submissions"]}
    return db_url, [submissions[key] for key in sorted(submissions)]


def load_class_refused(workdir: Path) -> list[dict]:
    """The refused (bad-name) rows of the same runs as load_class_record, once each."""
    rows = {(g["student_id"], g["assignment"]): g
            for r in _class_records(workdir) for g in r.get("refused", [])}
    return [rows[key] for key in sorted(rows)]
