"""grader.records.shard without grading anything: the split, the lock, and joining shard records."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TOY

from grader.records.report import RUN_RECORD
from grader.records.shard import Shard, load_class_record, save_shard_record, setup_lock, shard_of

PAIRS = [(f"student{i}", a) for i in range(300) for a in ("ex1_degradation", "ex2_identity")]


def test_parse() -> None:
    assert Shard.parse("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
    assert not Shard.parse("0/1").sharded and Shard.parse("0/2").sharded
    for bad in ("3/3", "1/0", "-1/3", "1", "a/b", "1/3/4"):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)


def test_every_pair_in_exactly_one_shard_and_balanced() -> None:
    for count in (1, 2, 3, 7):
        owners = [[k for k in range(count) if Shard(k, count).owns(s, a)] for s, a in PAIRS]
        assert all(len(o) == 1 for o in owners)
        sizes = [sum(o == [k] for o in owners) for k in range(count)]
        assert min(sizes) > 0.6 * len(PAIRS) / count, sizes  # roughly even


def test_split_is_the_same_in_another_interpreter() -> None:
    """Not Python's salted hash(): another process (another PYTHONHASHSEED) agrees."""
    code = ("from grader.records.shard import shard_of; print([shard_of(f'student{i}', 'ex1', 5) "
            "for i in range(50)])")
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert json.loads(out) == [shard_of(f"student{i}", "ex1", 5) for i in range(50)]


def _hold(path: str, seconds: float, queue) -> None:
    with setup_lock(Path(path), "sqlite:///x.db"):
        queue.put((time.monotonic(), "in"))
        time.sleep(seconds)
        queue.put((time.monotonic(), "out"))


def test_setup_lock_excludes_other_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hold, args=(str(tmp_path), 0.5, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    events = sorted(queue.get(timeout=60) for _ in range(4))
    for p in procs:
        p.join(60)
    # enter, leave, enter, leave: the second holder entered after the first left
    assert [e for _, e in events] == ["in", "out", "in", "out"], events


def _record(submissions: list[tuple[str, str, list[str]]]) -> list[dict]:
    return [{"student_id": s, "assignment_id": a, "flags": f, "autograded": True}
            for s, a, f in submissions]


def test_class_record_joins_all_shards(tmp_path: Path) -> None:
    save_shard_record(tmp_path, "db", Shard(1, 2), _record([("b", "ex1", [])]))
    with pytest.raises(ValueError, match="0/2"):
        load_class_record(tmp_path)  # shard 0 has not finished
    save_shard_record(tmp_path, "db", Shard(0, 2), _record([("a", "ex1", ["timeout"])]))
    db_url, subs = load_class_record(tmp_path)
    assert db_url == "db"
    assert [(s["student_id"], s["flags"]) for s in subs] == [("a", ["timeout"]), ("b", [])]


def test_class_record_takes_the_newest_run(tmp_path: Path) -> None:
    save_shard_record(tmp_path, "db", Shard(0, 2), _record([("a", "ex1", [])]))
    save_shard_record(tmp_path, "db", Shard(1, 2), _record([("b", "ex1", [])]))
    time.sleep(0.05)
    path = tmp_path / RUN_RECORD  # a later unsharded run of the whole class
    path.write_text(json.dumps({"db_url": "single", "submissions": _record([("c", "ex1", [])])}))
    assert load_class_record(tmp_path)[0] == "single"
    time.sleep(0.05)
    save_shard_record(tmp_path, "db", Shard(0, 2), _record([("a", "ex1", [])]))  # shards again
    assert [s["student_id"] for s in load_class_record(tmp_path)[1]] == ["a", "b"]


def test_no_run_at_all(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no finished autograde run"):
        load_class_record(tmp_path)


def test_already_registered_only_when_source_and_gradebook_match(tmp_path: Path) -> None:
    """Shards skip re-registering an unchanged assignment (others may be grading it), and
    register again when solutions/ changed or the gradebook lacks it."""
    import shutil

    from grader.bridge.course import put_venv_on_path, replace_tree, sqlite_url
    from grader.commands.autograde import GradingSettings, register_assignment
    from grader.records.shard import already_registered

    put_venv_on_path()
    solutions = tmp_path / "solutions"
    shutil.copytree(TOY / "solutions", solutions)
    work = tmp_path / "work"
    settings = GradingSettings(work, sqlite_url(work), sandbox=False)
    assert not already_registered(solutions, work, settings.db_url, "toy")
    replace_tree(solutions / "toy", work / "source" / "toy")
    register_assignment(settings, "toy")
    assert already_registered(solutions, work, settings.db_url, "toy")
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    assert not already_registered(solutions, work, other_db, "toy")
    (solutions / "toy" / "data.txt").write_text("new file")
    assert not already_registered(solutions, work, settings.db_url, "toy")


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql+psycopg2://grader:secret@/grades?host={tmp_path / 'no-server'}"
    with pytest.raises(ValueError, match="cannot reach the gradebook") as err:
        with setup_lock(tmp_path, url):
            pass
    assert "secret" not in str(err.value)  # the password is not printed
