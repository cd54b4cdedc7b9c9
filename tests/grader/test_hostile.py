"""Hostile and broken submissions: grading stays bounded, flags them, scores them, and goes on.

Built at test time from the toy assignment (tests/fixtures/toy: answers `square` and `double`,
test cells worth 2 + 1 points, one manual answer). One `autograde --jobs 2` run grades every
case below in the sandbox; the tests then check flags, scores, that files outside the sandbox
are untouched, that no process outlives grading, and that runs are resumable, repeatable and
independent of --jobs. A last test runs the gradebook on a real PostgreSQL server.
"""

from __future__ import annotations

import copy
import hashlib
import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, copy_toy, read_csv
from submissions import (
    grader_env,
    orphaned_grading_pids,
    pids_under,
    read_by_student,
    run_grader,
)

from grader.bridge.hidden_tests import HIDDEN_NOTE
from grader.isolation.sandbox import KERNEL_GRADER_FILES

CELL_TIMEOUT = 6  # seconds; the toy's cells take milliseconds
MEMORY_GB = "1.5"

pytestmark = [pytest.mark.slow,
              pytest.mark.needs_sandbox]

# student_id -> (expected flags, expected autograded points out of 3)
EXPECTED = {
    "good": ("", 3),
    "noisy_warnings": ("", 3),
    "not_json": ("invalid-notebook", 0),
    "not_a_notebook": ("invalid-notebook", 0),
    "empty_file": ("invalid-notebook", 0),
    "wrong_name": ("missing-notebook", 0),
    "no_notebook": ("missing-notebook", 0),
    "deleted_tests": ("", 3),
    "edited_tests": ("", 2),  # wrong double(); its emptied test cell is restored and fails
    "infinite_loop": ("timeout", 2),
    "os_exit": ("kernel-died", 2),
    "segfault": ("kernel-died", 2),
    "memory_bomb": ("", 2),  # MemoryError in the double cell; the kernel survives
    "fork_bomb": ("", 3),
    "huge_output": ("output-truncated", 3),
    "escape": ("", 3),  # tries to read/write outside and use the network; answers are right
    # the scan only flags; scores are the trusted verdict's (grader.judging.verdict): a forged
    # kernel report counts for nothing, and is listed for review as a verdict-mismatch
    "tamper_custom_exc": ("tamper-suspected", 2),
    "tamper_eq": ("tamper-suspected;verdict-mismatch", 2),
    "tamper_transformer": ("tamper-suspected;verdict-mismatch", 2),
    "tamper_import": ("tamper-suspected", 2),
    "tamper_sys_modules": ("tamper-suspected", 2),
    "tamper_runtime_only": ("tamper-suspected", 3),  # patches torch in its own process only
    # looks for the hidden tests and the grader's checks everywhere (kernel and verdict), then
    # raises with chosen text; its square() is wrong, double() right (see hunt_source). The
    # kernel's own traceback of its 5000-character error is over the cell's output cap.
    "hunt_checks": ("output-truncated;tamper-suspected", 1),
}

WRONG_DOUBLE = "def double(x):\n    return 0\n"
SECRET_LINE = 'assert square(-4) == 16, "hidden: square(-4) should be 16"'


def answer(student: str, root: Path, work: Path) -> dict[str, str] | None:
    """Answer-cell overrides (grade_id -> source) for a student; None: the plain solution."""
    solutions = root / "solutions" / "toy" / "toy.ipynb"
    return {
        "noisy_warnings": {"double": "import sys, warnings\n\ndef double(x):\n"
                           "    warnings.warn('careful', DeprecationWarning)\n"
                           "    warnings.warn('more care', RuntimeWarning)\n"
                           "    print('progress...', file=sys.stderr)\n    return 2 * x\n"},
        "edited_tests": {"double": WRONG_DOUBLE},
        "infinite_loop": {"double": "while True:\n    pass\n"},
        "os_exit": {"double": "import os\nos._exit(3)\n"},
        "segfault": {"double": "import faulthandler\nfaulthandler._sigsegv()\n"},
        "memory_bomb": {"double": "hog = []\nwhile True:\n    hog.append(bytearray(10**8))\n"},
        "fork_bomb": {"double": (
            "import os, subprocess\nchildren = []\ntry:\n    while True:\n"
            "        children.append(subprocess.Popen(['sleep', '600']))\n"
            "except OSError as e:\n    print('stopped after', len(children), e)\n"
            "children[-1].kill()\nchildren[-1].wait()  # room for one more: a daemon\n"
            "if os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(600)\n"
            "    os._exit(0)\n\ndef double(x):\n    return 2 * x\n")},
        "huge_output": {"double": "for _ in range(50):\n    print('x' * 100_000)\n\n"
                        "def double(x):\n    return 2 * x\n"},
        "escape": {"double": _escape_source(root, work, solutions)},
        "tamper_custom_exc": {"double": WRONG_DOUBLE + "get_ipython().set_custom_exc("
                              "(AssertionError,), lambda *a, **k: None)\n"},
        "tamper_eq": {"double": "class Anything:\n    def __eq__(self, other):\n"
                      "        return True\n\ndef double(x):\n    return Anything()\n"},
        "tamper_transformer": {"double": WRONG_DOUBLE + "get_ipython().input_transformers_cleanup"
                               ".append(lambda lines: ['pass\\n'])\n"},
        "tamper_import": {"double": "import grader.checks.common\n\n" + WRONG_DOUBLE},
        "tamper_sys_modules": {"double": "import sys\nsys.modules['numpy'] = None\n"
                               + WRONG_DOUBLE},
        "tamper_runtime_only": {"double": "import torch\nvars(torch).update(allclose=lambda *a, "
                                "**k: True)\n\ndef double(x):\n    return 2 * x\n"},
        "hunt_checks": {"square": hunt_source()},
    }.get(student)


def hunt_source() -> str:
    """An answer cell that prints whatever of the grader it can find (by grader.__file__, by
    known paths, by import, in sys.modules), prints every later cell's source as the kernel
    gets it, and defines a square() that raises with 5000 characters of chosen text."""
    checks = REPO / "grader" / "checks"
    known = [str(checks), str(checks / "common.py"), str(checks / "ex1.py")]
    return (
        "import inspect, os, sys\ntry:\n    import grader\n"
        "    here = os.path.dirname(grader.__file__)\n"
        "    print('GRADER FILES:', sorted(os.path.relpath(os.path.join(d, f), here)\n"
        "          for d, _, fs in os.walk(here) for f in fs if f.endswith('.py')))\n"
        "except ImportError:\n"
        "    here = '/'\n"
        f"for path in {known!r} + [os.path.join(here, 'checks', 'ex2.py')]:\n"
        "    try:\n"
        "        print('OPENED', path, open(path).read()[:300] if os.path.isfile(path)\n"
        "              else os.listdir(path))\n"
        "    except OSError as e:\n        print('NOT READ', path, type(e).__name__)\n"
        "for name, module in list(sys.modules.items()):\n"
        "    if 'grader' in name and module is not None:\n"
        "        try:\n            print('MODULE', name, inspect.getsource(module)[:300])\n"
        "        except Exception as e:\n            print('MODULE', name, type(e).__name__)\n"
        "try:\n    import grader.checks.common\n    print('IMPORTED CHECKS')\n"
        "except ImportError as e:\n    print('NO CHECKS', type(e).__name__)\n"
        "try:\n    get_ipython().events.register(\n"
        "        'pre_run_cell', lambda info: print('CELL SOURCE:', info.raw_cell))\n"
        "except NameError:\n    pass  # not in a kernel (the grader's own run)\n\n\n"
        "def square(x):\n    raise ValueError('CHOSEN ' + 'A' * 5000)\n")


def _escape_source(root: Path, work: Path, solutions: Path) -> str:
    """Answer code that tries everything the sandbox forbids, then answers correctly."""
    targets = [root / "solutions" / "toy" / "PWNED", work / "PWNED", Path("/tmp/PWNED_hostile"),
               root / "submissions" / "good" / "toy" / "toy.ipynb"]
    return (
        "import os, socket\nprobes = {}\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n        open(path, 'w').write('pwned')\n        probes[path] = 'WROTE'\n"
        "    except OSError as e:\n        probes[path] = type(e).__name__\n"
        f"for path in [{str(solutions)!r}, {str(work / 'gradebook.db')!r}, '/etc/shadow']:\n"
        "    try:\n        os.listdir(path) if os.path.isdir(path) else open(path).read()\n"
        "        probes[path] = 'READ'\n    except OSError as e:\n"
        "        probes[path] = type(e).__name__\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "    probes['net'] = 'CONNECTED'\nexcept OSError as e:\n    probes['net'] = 'blocked'\n"
        "open('own_file.txt', 'w').write('mine')  # its scratch folder is writable\n"
        "print(probes)\n\ndef double(x):\n    return 2 * x\n")


# ----------------------------------------------------------------------------- building


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def _solved(root: Path):
    released = nbformat.read(root / "exercises" / "toy" / "toy.ipynb", as_version=4)
    solution = nbformat.read(root / "solutions" / "toy" / "toy.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: _strip_markers(c.source)
               for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[gid]
    return nb


def _notebook_for(student: str, root: Path, work: Path):
    nb = _solved(root)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        override = (answer(student, root, work) or {}).get(gid)
        if override is not None:
            cell.source = override
    if student == "deleted_tests":
        nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")
                    or c.metadata["nbgrader"].get("solution")]
    if student == "edited_tests":
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_double":
                cell.source = "pass  # nothing to see here"
    return nb


def write_submission(student: str, submissions: Path, root: Path, work: Path) -> None:
    folder = submissions / student / "toy"
    folder.mkdir(parents=True)
    target = folder / "toy.ipynb"
    raw = {"not_json": "this is {not json", "not_a_notebook": '{"hello": "world"}',
           "empty_file": ""}
    if student in raw:
        target.write_text(raw[student])
    elif student == "wrong_name":
        nbformat.write(_solved(root), folder / "toy_final_v2.ipynb")
    elif student == "no_notebook":
        (folder / "notes.txt").write_text("forgot the notebook")
    else:
        nbformat.write(_notebook_for(student, root, work), target)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def autograde_args(root: Path, submissions: Path, work: Path, *extra: str) -> list[str]:
    return ["autograde", str(submissions), "--workdir", str(work), "--root", str(root),
            "--cell-timeout", str(CELL_TIMEOUT), "--notebook-timeout", "120",
            "--memory-gb", MEMORY_GB, "--max-processes", "64", *extra]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("hostile")
    root, submissions, work = base / "root", base / "root" / "submissions", base / "work"
    copy_toy(root)
    done = run_grader("release", "--root", str(root))
    assert done.returncode == 0, done.stderr
    for student in EXPECTED:
        write_submission(student, submissions, root, work)
    before = {"root": tree_digest(root)}
    Path("/tmp/PWNED_hostile").unlink(missing_ok=True)
    start = time.monotonic()
    result = run_grader(*autograde_args(root, submissions, work, "--jobs", "2"))
    seconds = time.monotonic() - start
    print(f"hostile suite: {len(EXPECTED)} submissions graded in {seconds:.0f} s (--jobs 2)")
    return {"root": root, "submissions": submissions, "work": work, "result": result,
            "seconds": seconds, "before": before}


# ----------------------------------------------------------------------------- the tests


def test_run_finishes_and_exits_0(course):
    # Finishing at all is the bound: the looping answers are stopped by the 6 s cell timeout
    # (their flags are checked below) and run_grader gives up after 600 s. How long it took
    # is printed, not asserted: on a shared machine that measures the neighbours.
    result = course["result"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_flags_and_scores(course, student):
    flags, points = EXPECTED[student]
    grades = read_by_student(course["work"] / "grades.csv")
    row = grades[student]
    assert row["flags"] == flags, (student, row)
    cells = [r for r in read_csv(course["work"] / "grades_by_cell.csv")
             if r["student_id"] == student and r["grade_id"].startswith("test_")]
    assert sum(float(r["score"]) for r in cells) == points, (student, cells)
    feedback = course["work"] / "feedback" / student / "toy" / "toy.html"
    assert feedback.exists()


def test_flagged_submissions_are_listed_for_review(course):
    review = read_by_student(course["work"] / "review.csv")
    flagged = {s for s, (flags, _) in EXPECTED.items() if flags}
    assert set(review) == flagged
    for student, (flags, _) in EXPECTED.items():
        if "tamper-suspected" in flags:
            details = course["work"] / review[student]["details"]
            assert details.read_text().strip(), student


def test_runtime_only_tampering_is_caught_by_the_kernel_probe(course):
    text = (course["work"] / "review" / "tamper_runtime_only" / "toy.txt").read_text()
    assert "at run time: torch.allclose was replaced" in text, text


def test_nothing_outside_the_sandbox_changed(course):
    root = course["root"]
    assert tree_digest(root) == course["before"]["root"]  # solutions, release, submissions
    assert not Path("/tmp/PWNED_hostile").exists()
    assert not (course["work"] / "PWNED").exists()
    nb = nbformat.read(course["work"] / "autograded" / "escape" / "toy" / "toy.ipynb",
                       as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    # /tmp inside the sandbox is its own tmpfs: writing there is allowed and lands nowhere
    escaped = text.replace("'/tmp/PWNED_hostile': 'WROTE'", "")
    assert "WROTE" not in escaped and "READ" not in escaped and "CONNECTED" not in text, text
    assert "'net': 'blocked'" in text, text
    # its working folder is a scratch tmpfs: what it wrote there is not kept (issue 10)
    assert not (course["work"] / "autograded" / "escape" / "toy" / "own_file.txt").exists()


def test_hidden_tests_do_not_leak_into_kernels(course):
    """The kernel could not read solutions/: no hidden-test text in any graded output."""
    for student in EXPECTED:
        nb_path = course["work"] / "autograded" / student / "toy" / "toy.ipynb"
        if nb_path.exists():
            outputs = "".join(str(o) for c in nbformat.read(nb_path, as_version=4).cells
                              for o in c.get("outputs", []))
            assert SECRET_LINE not in outputs, student


def _check_lines() -> set[str]:
    """Lines of grader/checks that say something, but for those the kernel's own grader files
    (which it may print) share with them."""
    own = {line.strip() for name in KERNEL_GRADER_FILES
           for line in (REPO / "grader" / name).read_text().splitlines()}
    return {line.strip() for path in (REPO / "grader" / "checks").glob("*.py")
            for line in path.read_text().splitlines()
            if len(line.strip()) >= 20 and line.strip() not in own}


def _received(course, student: str) -> dict[str, str]:
    """What a student gets back: the feedback page (as its text reads) and the executed
    notebook (sources, outputs, metadata)."""
    work = course["work"]
    got = {}
    page = work / "feedback" / student / "toy" / "toy.html"
    if page.exists():
        got["page"] = html.unescape(page.read_text(encoding="utf-8"))
    notebook = work / "autograded" / student / "toy" / "toy.ipynb"
    if notebook.exists():
        nb = nbformat.read(notebook, as_version=4)
        got["outputs"] = "\n".join("".join(o.get("text", "")) + str(o.get("traceback", ""))
                                   for c in nb.cells for o in c.get("outputs", []))
        got["notebook"] = "\n".join([c.source for c in nb.cells]
                                    + [str(c.metadata) for c in nb.cells] + [got["outputs"]])
    return got


def test_no_hidden_test_or_check_reaches_what_a_student_gets_back(course):
    """Every page and executed notebook: no hidden-test line, no line of grader/checks, no
    traceback frame in a grader file; the test cells say that the grader checks them."""
    lines = _check_lines()
    hidden = ["square(-4) == 16", "double(-1.5) == -3.0"]  # the toy's hidden asserts
    for student in EXPECTED:
        for what, text in _received(course, student).items():
            assert not [h for h in hidden if h in text], (student, what)
            assert not [line for line in lines if line in text], (student, what)
            # a traceback frame in a grader file (IPython: "FILE.py:LINE", Python: '", line')
            assert not re.search(r"grader/[\w/]+\.py(:|\", line )\d", text), (student, what)
            if what == "notebook" and "test_square" in text:
                assert HIDDEN_NOTE in text, student


def test_hunting_for_the_checks_finds_nothing_and_says_little(course):
    """hunt_checks: the kernel found grader/__init__.py and tamper.py only, read nothing of
    grader/checks, saw its test cells without their hidden tests; the verdict's message quotes
    200 characters of its exception."""
    got = _received(course, "hunt_checks")
    text = got["outputs"]
    assert f"GRADER FILES: {sorted(KERNEL_GRADER_FILES)}" in text, text[:3000]
    assert "NO CHECKS" in text and "IMPORTED CHECKS" not in text
    assert "OPENED" not in text  # no grader file could be read or listed
    assert "CELL SOURCE:" in text and HIDDEN_NOTE in text
    verdict = got["page"].split("Checked by the grader on your code: this cell failed.")[1]
    first = verdict.strip().splitlines()[0]
    assert first.startswith("square raised ValueError: CHOSEN AAA") and len(first) < 300, first


def test_huge_output_is_kept_out_of_notebook_and_feedback(course):
    autograded = course["work"] / "autograded" / "huge_output" / "toy" / "toy.ipynb"
    feedback = course["work"] / "feedback" / "huge_output" / "toy" / "toy.html"
    assert autograded.stat().st_size < 1_000_000
    assert feedback.stat().st_size < 2_000_000
    assert "output truncated by the grader" in autograded.read_text()


def test_no_process_outlives_grading(course):
    assert course["result"].returncode == 0
    # every kernel, its `sleep 600` children and the setsid() daemon ran in the work folder,
    # or in nbgrader's folder of a grading process that has ended
    assert pids_under(course["work"]) == [] and orphaned_grading_pids() == []


def test_second_run_gives_the_same_grades(course):
    work = course["work"]
    first = (work / "grades.csv").read_text(), (work / "grades_by_cell.csv").read_text()
    result = run_grader(*autograde_args(course["root"], course["submissions"], work))
    assert result.returncode == 0, result.stderr[-3000:]
    assert ((work / "grades.csv").read_text(), (work / "grades_by_cell.csv").read_text()) == first
    assert "(from an earlier run)" in result.stdout


SUBSET = ["good", "infinite_loop", "os_exit", "tamper_eq"]  # one of each kind of outcome


def _subset(course, base: Path, students: list[str] = SUBSET) -> Path:
    submissions = base / "submissions"
    for student in students:
        shutil.copytree(course["submissions"] / student, submissions / student)
    return submissions


def test_serial_run_matches_jobs_2(course, tmp_path):
    """--jobs 2 (the main run) and a serial run give identical rows."""
    submissions = _subset(course, tmp_path)
    work = tmp_path / "work"
    result = run_grader(*autograde_args(course["root"], submissions, work))
    assert result.returncode == 0, result.stderr[-3000:]
    serial = read_by_student(work / "grades.csv")
    parallel = read_by_student(course["work"] / "grades.csv")
    assert {s: serial[s] for s in SUBSET} == {s: parallel[s] for s in SUBSET}
    by_cell = lambda p: sorted(  # noqa: E731
        tuple(r.values()) for r in read_csv(p) if r["student_id"] in SUBSET)
    assert by_cell(work / "grades_by_cell.csv") == by_cell(course["work"] / "grades_by_cell.csv")


def test_killed_run_leaves_a_gradebook_the_next_run_continues(course, tmp_path):
    students = ["good", "infinite_loop", "tamper_eq"]
    submissions = _subset(course, tmp_path, students)
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "grader",
                             *autograde_args(course["root"], submissions, work)],
                            stdout=subprocess.PIPE, text=True, env=grader_env(), cwd=REPO,
                            start_new_session=True)
    lines = []
    for line in proc.stdout:  # kill right after the first submission is recorded
        lines.append(line)
        if line.startswith("graded "):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert lines and lines[-1].startswith("graded "), lines
    deadline = time.monotonic() + 15
    while (pids_under(work) or orphaned_grading_pids()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pids_under(work) == []  # the half-run kernel died with its grader
    assert orphaned_grading_pids() == []
    result = run_grader(*autograde_args(course["root"], submissions, work))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("(from an earlier run)") >= 1
    resumed = read_by_student(work / "grades.csv")
    reference = read_by_student(course["work"] / "grades.csv")
    assert {s: resumed[s] for s in students} == {s: reference[s] for s in students}


def test_refuses_without_sandbox_unless_asked(course, tmp_path):
    """Where bubblewrap is missing, autograde refuses; --no-sandbox runs anyway."""
    submissions = tmp_path / "submissions"
    shutil.copytree(course["submissions"] / "good", submissions / "good")
    no_bwrap = tmp_path / "bin"
    no_bwrap.mkdir()
    for tool in ("alembic",):
        os.symlink(REPO / ".venv" / "bin" / tool, no_bwrap / tool)
    env = {**os.environ, "PATH": str(no_bwrap)}
    cmd = [sys.executable, "-m", "grader",
           *autograde_args(course["root"], submissions, tmp_path / "work")]
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert refused.returncode == 2
    assert "--no-sandbox" in refused.stderr and "bubblewrap" in refused.stderr
    assert not (tmp_path / "work" / "grades.csv").exists()
    allowed = subprocess.run(cmd + ["--no-sandbox"], capture_output=True, text=True, env=env,
                             cwd=REPO, timeout=300)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert read_by_student(tmp_path / "work" / "grades.csv")["good"]["score"] == "3"


def test_postgresql_gradebook(course, tmp_path):
    """--db-url postgresql://... against a real server gives the SQLite run's grades (and a
    second run against the same database resumes instead of grading again)."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from postgres import postgres_server, unavailable_reason

    if unavailable_reason():
        pytest.fail(unavailable_reason())  # make test installs postgresql: this must not skip
    submissions = _subset(course, tmp_path)
    work = tmp_path / "work"
    with postgres_server() as url:
        result = run_grader(*autograde_args(course["root"], submissions, work, "--db-url", url,
                                            "--jobs", "2"))
        assert result.returncode == 0, result.stderr[-3000:]
        again = run_grader(*autograde_args(course["root"], submissions, work, "--db-url", url))
        assert again.returncode == 0, again.stderr[-3000:]
    assert not (work / "gradebook.db").exists()
    pg = read_by_student(work / "grades.csv")
    reference = read_by_student(course["work"] / "grades.csv")
    assert {s: pg[s] for s in SUBSET} == {s: reference[s] for s in SUBSET}
