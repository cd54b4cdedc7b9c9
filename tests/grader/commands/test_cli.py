"""grader.commands.cli: `python -m grader`'s parser (its commands, options, defaults and --help)
and main(): each command's options reach the function that does the work, and bad input is
refused with a clear message and exit 2 before anything is read or written. The commands
themselves are faked (no nbgrader run, no kernel); they are tested in their own files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TOY

from grader.bridge.course import CourseLayout
from grader.bridge.nbgrader_config import DEFAULT_TIMEOUT
from grader.commands.cli import _limits, build_parser, main
from grader.isolation.limits import GIB, Limits
from grader.records import flags as flag_names
from grader.records.shard import Shard


class Calls:
    """Stands in for a command's function: records each call's arguments, returns `result`
    (or raises it when it is an exception)."""

    def __init__(self, result=None):
        self.result = result
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def _outcome(student: str, flags: list[str] | None = None):
    from grader.commands.autograde import Outcome

    return Outcome(student, "toy", flags or [], autograded=True, seconds=1.0)


@pytest.fixture
def fake_autograde(monkeypatch) -> Calls:
    import grader.commands.autograde as autograde_module

    fake = Calls(result=[])
    monkeypatch.setattr(autograde_module, "autograde", fake)
    return fake


def _autograde_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["autograde", str(tmp_path / "subs"), "--workdir", str(tmp_path / "work"),
            "--root", str(TOY), *extra]


# ----------------------------------------------------------------------------- the parser


def test_python_dash_m_grader_prints_help() -> None:
    # the entry point itself, in a fresh interpreter, once (a process costs seconds: nbgrader)
    out = subprocess.run([sys.executable, "-m", "grader", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: python -m grader")
    assert all(command in out for command in ["release", "check", "autograde"])


@pytest.mark.parametrize("command, options", [
    ([], ["release", "check", "autograde"]),
    (["release"], ["--assignment", "--root"]),
    (["check"], ["--jobs", "--cell-timeout"]),
    (["autograde"], ["--workdir", "--db-url", "--jobs", "SUBMISSIONS"]),
])
def test_help(command: list[str], options: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m grader")
    assert [option for option in options if option not in out] == []


def test_the_commands_are_the_grader_contracts() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == ["release", "check", "autograde", "similarity", "collect",
                                 "export", "publish"]


def test_no_command_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m grader: error: the following arguments are required: COMMAND")


def test_grading_options_default_to_the_limits() -> None:
    args = build_parser().parse_args(["autograde", "subs", "--workdir", "w"])
    assert (args.jobs, args.timeout, args.db_url, args.shard, args.students) == (
        1, DEFAULT_TIMEOUT, None, None, None)
    assert (args.force, args.quiet, args.no_sandbox, args.root, args.assignment) == (
        False, False, False, None, None)
    assert _limits(args) == Limits(cell_timeout=DEFAULT_TIMEOUT)  # every other limit: default


def test_grading_options_make_the_limits() -> None:
    args = build_parser().parse_args(["check", "--timeout", "7", "--notebook-timeout", "60",
                                      "--memory-gb", "1.5", "--max-processes", "32"])
    assert args.timeout == 7  # --timeout: the old name of --cell-timeout
    assert _limits(args) == Limits(cell_timeout=7, notebook_timeout=60,
                                   memory_bytes=int(1.5 * GIB), max_processes=32)


def test_autograde_accepts_shard() -> None:
    args = build_parser().parse_args(["autograde", "subs", "--workdir", "w", "--shard", "1/4"])
    assert Shard.parse(args.shard) == Shard(1, 4)


def test_export_options() -> None:
    parse = build_parser().parse_args
    assert parse(["export", "--workdir", "w"]).formats is None
    args = parse(["export", "--workdir", "w", "--format", "canvas", "--format", "moodle"])
    assert args.formats == ["canvas", "moodle"]
    with pytest.raises(SystemExit):
        parse(["export", "--workdir", "w", "--format", "blackboard"])
    args = parse(["export", "--workdir", "w", "--root", "r", "--roster", "x.csv", "--missing",
                  "zero", "--include-pending", "--final"])
    assert (args.root, args.roster, args.missing) == (Path("r"), Path("x.csv"), "zero")
    assert args.include_pending and args.final
    args = parse(["export", "--workdir", "w", "--column", "ex2_identity=Exercise 2"])
    assert args.columns == ["ex2_identity=Exercise 2"]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("option, message", [
    (["--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
    (["--jobs", "two"], "argument --jobs: expected a whole number, got 'two'"),
    (["--cell-timeout", "-5"], "argument --cell-timeout/--timeout: must be at least 1, got -5"),
    (["--notebook-timeout", "1.5"],
     "argument --notebook-timeout: expected a whole number, got '1.5'"),
    (["--max-processes", "0"], "argument --max-processes: must be at least 1, got 0"),
    (["--memory-gb", "inf"], "argument --memory-gb: must be a positive number of GB, got 'inf'"),
    (["--memory-gb", "nan"], "argument --memory-gb: must be a positive number of GB, got 'nan'"),
    (["--memory-gb", "0"], "argument --memory-gb: must be a positive number of GB, got '0'"),
    (["--memory-gb", "4GB"], "argument --memory-gb: expected a number of GB, got '4GB'"),
])
def test_a_bad_option_value_exits_2_before_grading(option, message, tmp_path, capsys,
                                                   fake_autograde) -> None:
    with pytest.raises(SystemExit) as done:
        main(_autograde_argv(tmp_path, *option))
    assert done.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"python -m grader autograde: error: " \
                                                       f"{message}"
    assert fake_autograde.calls == [] and not (tmp_path / "work").exists()


@pytest.mark.parametrize("option, message", [
    (["--shard", "4/4"], "error: --shard 4/4: need 0 <= K < N (K counts from 0, e.g. 0/3, 1/3, "
                         "2/3)"),
    (["--shard", "1of4"], "error: --shard '1of4': expected K/N, e.g. 0/3 (K counts from 0)"),
    (["--memory-gb", "0.1"], "error: Limits.memory_bytes must be an integer >= 268435456, got "
                             f"{int(0.1 * GIB)}"),
    (["--assignment", "nope"], "error: unknown assignment 'nope': no "
                               f"{TOY / 'solutions' / 'nope' / 'nope.ipynb'} (known: ['toy'])"),
])
def test_a_refused_value_is_an_error_line_and_exit_2(option, message, tmp_path, capsys,
                                                     monkeypatch) -> None:
    """Values only the command can judge: main() prints the ValueError as `error: ...` and
    returns 2; nothing is graded or written."""
    import grader.commands.autograde as autograde_module

    monkeypatch.setattr(autograde_module, "grade_one", Calls(AssertionError("graded")))
    (tmp_path / "subs" / "ann" / "toy").mkdir(parents=True)
    before = sorted(tmp_path.rglob("*"))
    assert main(_autograde_argv(tmp_path, "--no-sandbox", *option)) == 2
    assert capsys.readouterr().err.splitlines() == [message]
    assert sorted(tmp_path.rglob("*")) == before


def test_autograde_refuses_bad_folders_with_exit_2(tmp_path, capsys) -> None:
    """A submissions folder that does not exist, or a DIR inside it (submitted files are never
    modified): exit 2 and a message, before anything is written."""
    subs = tmp_path / "subs"
    (subs / "ann" / "toy").mkdir(parents=True)
    nowhere = ["autograde", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "w"),
               "--root", str(TOY), "--no-sandbox"]
    assert main(nowhere) == 2
    assert capsys.readouterr().err == f"error: submissions folder {tmp_path / 'nowhere'} " \
                                      f"does not exist\n"
    inside = ["autograde", str(subs), "--workdir", str(subs / "inside"), "--root", str(TOY),
              "--no-sandbox"]
    assert main(inside) == 2
    assert "must not contain each other" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ann", "subs", "toy"]


def test_a_bad_column_is_refused_before_export(tmp_path, capsys, monkeypatch) -> None:
    import grader.commands.export as export_module

    fake = Calls(result=[])
    monkeypatch.setattr(export_module, "export", fake)
    assert main(["export", "--workdir", str(tmp_path), "--column", "ex2_identity"]) == 2
    assert capsys.readouterr().err == "error: --column 'ex2_identity': expected " \
                                      "ASSIGNMENT=TITLE\n"
    assert main(["export", "--workdir", str(tmp_path), "--column", "=Exercise 2"]) == 2
    assert fake.calls == []


# ----------------------------------------------------------------------------- main()


def test_autograde_gets_every_option_and_exits_0_when_all_were_graded(tmp_path, capsys,
                                                                       fake_autograde) -> None:
    fake_autograde.result = [_outcome("ann"), _outcome("bo", [flag_names.TIMEOUT])]
    argv = _autograde_argv(tmp_path, "--assignment", "toy", "--jobs", "3", "--db-url",
                           "sqlite:///x.db", "--cell-timeout", "9", "--memory-gb", "2",
                           "--force", "--student", "ann", "--student", "bo", "--no-sandbox",
                           "--quiet")
    assert main(argv) == 0
    ((args, kwargs),) = fake_autograde.calls
    assert args == (tmp_path / "subs", tmp_path / "work", args[2], "toy")
    assert args[2].solutions == TOY.resolve() / "solutions"
    assert {k: v for k, v in kwargs.items() if k not in ("log", "progress")} == {
        "jobs": 3, "db_url": "sqlite:///x.db", "timeout": 9, "sandbox": False,
        "limits": Limits(cell_timeout=9, memory_bytes=2 * GIB), "shard": Shard(),
        "force": True, "force_students": ["ann", "bo"]}
    out = capsys.readouterr()
    assert out.out.startswith("graded 2/2 submission(s) in ")  # grader.records.progress
    assert out.out.splitlines()[-1] == f"wrote {CourseLayout(tmp_path / 'work').grades_csv()}"
    assert out.err == ""


def test_autograde_exits_1_and_names_each_submission_not_graded(tmp_path, capsys,
                                                                fake_autograde) -> None:
    fake_autograde.result = [_outcome("ann"), _outcome("bo", [flag_names.GRADING_ERROR])]
    assert main(_autograde_argv(tmp_path)) == 1
    log = CourseLayout(tmp_path / "work").log("bo", "toy")
    assert capsys.readouterr().err == ("error: could not grade bo/toy (retried by the next run)"
                                       f"; see {log}\n")
    assert fake_autograde.calls[0][1]["sandbox"] is True  # the sandbox unless --no-sandbox


def test_a_shard_leaves_the_csvs_to_export(tmp_path, capsys, fake_autograde) -> None:
    assert main(_autograde_argv(tmp_path, "--shard", "1/4")) == 0
    assert fake_autograde.calls[0][1]["shard"] == Shard(1, 4)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "shard 1/4 done; once all 4 shards have finished, run `python -m grader export "
        f"--workdir {tmp_path / 'work'}` for the class's CSVs")


@pytest.mark.parametrize("ok, code", [(True, 0), (False, 1)])
def test_check_gets_its_options(ok, code, monkeypatch) -> None:
    import grader.commands.check as check_module

    fake = Calls(result=ok)
    monkeypatch.setattr(check_module, "check", fake)
    assert main(["check", "--root", str(TOY), "--jobs", "2", "--cell-timeout", "5",
                 "--notebook-timeout", "60", "--memory-gb", "2", "--max-processes", "64"]) == code
    assert main(["check", "--root", str(TOY), "--assignment", "toy", "--no-sandbox"]) == code
    (roots, assignments), kwargs = fake.calls[0]
    assert roots.solutions == TOY.resolve() / "solutions" and assignments == ["toy"]
    # the limits check was given reach the grading (they were once accepted and ignored)
    assert kwargs == {"jobs": 2, "timeout": 5, "sandbox": None,  # sandboxed where available
                      "limits": Limits(cell_timeout=5, notebook_timeout=60,
                                       memory_bytes=2 * GIB, max_processes=64)}
    assert fake.calls[1][1] == {"jobs": 1, "timeout": DEFAULT_TIMEOUT, "sandbox": False,
                                "limits": Limits(cell_timeout=DEFAULT_TIMEOUT)}


def test_release_and_publish_refusals_exit_1(tmp_path, capsys, monkeypatch) -> None:
    import grader.commands.publish as publish_module
    import grader.commands.release as release_module

    monkeypatch.setattr(release_module, "release",
                        Calls(release_module.ReleaseError("toy: solution text leaked")))
    assert main(["release", "--root", str(TOY)]) == 1
    assert capsys.readouterr().err == "error: toy: solution text leaked\n"
    fake_publish = Calls(publish_module.PublishError("would publish an answer"))
    monkeypatch.setattr(publish_module, "publish", fake_publish)
    assert main(["publish", str(tmp_path / "dest"), "--root", str(TOY), "--self-study"]) == 1
    assert capsys.readouterr().err == "error: would publish an answer\n"
    assert fake_publish.calls == [((TOY.resolve(), tmp_path / "dest"),
                                   {"site": None, "self_study": True})]


def test_export_gets_its_options_and_exit_codes(tmp_path, capsys, monkeypatch) -> None:
    import grader.commands.export as export_module

    fake = Calls(result=[("bo", "toy")])
    monkeypatch.setattr(export_module, "export", fake)
    assert main(["export", "--workdir", str(tmp_path), "--column", " toy = Exercise 0 ",
                 "--jobs", "2", "--percent"]) == 1
    assert capsys.readouterr().err == "error: no feedback for bo/toy\n"
    assert fake.calls == [((tmp_path,), {
        "db_url": None, "formats": ("csv",), "jobs": 2, "roster": None, "missing": "blank",
        "include_pending": False, "final": False, "columns": {"toy": "Exercise 0"},
        "percent": True})]
    fake.result = export_module.ExportRefused("2 submission(s) still need a hand grade")
    assert main(["export", "--workdir", str(tmp_path), "--final"]) == 1
    assert capsys.readouterr().err == "error: 2 submission(s) still need a hand grade\n"
    fake.result = []
    assert main(["export", "--workdir", str(tmp_path)]) == 0
