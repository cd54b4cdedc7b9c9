"""Hidden tests never reach a student (grader.bridge.hidden_tests, grader.isolation.sandbox,
grader.judging.verdict, grader.judging.proxy): test cells reach the kernel without them, no sandbox
can read grader/checks, and a failure message repeats no more than a short escaped excerpt of what
the student's code chose (the excerpts themselves: tests/grader/judging/test_proxy.py; the
messages and the test cells' parts: test_verdict.py).

The last test replays a hostile answer against the verdict's real sandboxed subject (bubblewrap):
it looks for the checks by path, by import and in sys.modules, and raises with chosen text."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from traitlets.config import Config

from grader.bridge.hidden_tests import HIDDEN_NOTE, HideHiddenTests, split_hidden, visible_source
from grader.bridge.nbgrader_steps import configure_execution
from grader.isolation.limits import Limits
from grader.isolation.sandbox import KERNEL_GRADER_FILES, SandboxedExecute, SandboxSpec
from grader.judging.verdict import judge

GRADER = REPO / "grader"
TOY = REPO / "tests" / "fixtures" / "toy" / "solutions" / "toy" / "toy.ipynb"
needs_sandbox = pytest.mark.needs_sandbox

CELL = ("assert f(1) == 1, 'visible'\n"
        "### BEGIN HIDDEN TESTS\n"
        "from grader.checks import ex2\n"
        "ex2.check_residual_mlp(f)\n"
        "### END HIDDEN TESTS\n")


def check_lines() -> set[str]:
    """Every line of grader/checks that says something (code or text of 12+ characters)."""
    return {line.strip() for path in (GRADER / "checks").glob("*.py")
            for line in path.read_text().splitlines() if len(line.strip()) >= 12}


def leaked(text: str) -> list[str]:
    return [line for line in check_lines() if line in text]


# --------------------------------------------------------------------------- the kernel's cells


def test_split_keeps_order_and_drops_the_markers():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\nc = 3"
    assert split_hidden(source) == [(False, "a = 1"), (True, "b = 2"), (False, "c = 3")]
    assert split_hidden("x = 1") == [(False, "x = 1")]
    # a region left open is hidden to the end; an END without a BEGIN is just a line
    assert split_hidden("a\n# BEGIN HIDDEN TESTS\nb") == [(False, "a"), (True, "b")]
    assert split_hidden("a\n# END HIDDEN TESTS") == [(False, "a\n# END HIDDEN TESTS")]


def test_the_kernel_runs_the_visible_part_and_a_note():
    text = visible_source(CELL)
    assert text.splitlines() == ["assert f(1) == 1, 'visible'", HIDDEN_NOTE]
    assert "grader" not in text.replace(HIDDEN_NOTE, "")
    inside = ("if True:\n    x = 1\n    ### BEGIN HIDDEN TESTS\n    secret()\n"
              "    ### END HIDDEN TESTS\n")
    ast.parse(visible_source(inside))  # still code where the region was a whole block
    assert "secret" not in visible_source(inside)


def _toy_notebook() -> nbformat.NotebookNode:
    nb = nbformat.read(TOY, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                  and c.cell_type == "code")
    answer.source += "\n# ### BEGIN HIDDEN TESTS (a student's line: stays)\n"
    return nb


def test_hide_hidden_tests_leaves_no_hidden_line_in_any_test_cell():
    nb = _toy_notebook()
    hidden = [text for c in nb.cells if c.cell_type == "code"
              for h, text in split_hidden(c.source) if h]
    assert hidden  # the toy has hidden tests
    before = copy.deepcopy(nb)
    nb, _ = HideHiddenTests().preprocess(nb, {})
    text = nbformat.writes(nb)
    assert not [line for part in hidden for line in part.splitlines() if line in text]
    assert text.count(HIDDEN_NOTE) == 2
    for old, new in zip(before.cells, nb.cells, strict=True):  # answer cells untouched
        if not old.metadata.get("nbgrader", {}).get("grade"):
            assert old.source == new.source


def test_the_hidden_tests_go_before_the_kernel_runs():
    c = Config()
    configure_execution(c, Limits())
    steps = c.Autograde.autograde_preprocessors
    assert steps.index(HideHiddenTests) < steps.index(SandboxedExecute)


# --------------------------------------------------------------------------- the sandboxes


def _binds(spec: SandboxSpec) -> dict[str, str]:
    argv = spec.argv(["python"])
    return {argv[i + 1]: a for i, a in enumerate(argv)
            if a in ("--bind", "--ro-bind", "--tmpfs", "--remount-ro")}


def test_kernel_and_subject_sandboxes_hold_no_grader_code_but_their_own(tmp_path):
    kernel = _binds(SandboxSpec(None, tmp_path, Limits(), None, grader_files=KERNEL_GRADER_FILES))
    under = sorted(p for p in kernel if Path(p).is_relative_to(GRADER.resolve()))
    assert under == [str(GRADER.resolve() / name) for name in sorted(KERNEL_GRADER_FILES)]
    subject = _binds(SandboxSpec(tmp_path, tmp_path, Limits(), None))  # the verdict's subject
    assert not [p for p in subject if Path(p).is_relative_to(GRADER.resolve())]
    # a mount that shows the package (here: the whole checkout) is covered by an empty tmpfs
    masked = SandboxSpec(None, tmp_path, Limits(), None, extra_readonly=[REPO],
                         grader_files=KERNEL_GRADER_FILES).argv(["python"])
    at = masked.index("--tmpfs", masked.index(str(REPO.resolve())))
    assert masked[at + 1] == str(GRADER.resolve())
    assert masked[masked.index("--remount-ro") + 1] == str(GRADER.resolve())
    assert masked.index("--remount-ro") > max(
        i for i, a in enumerate(masked) if a.endswith("inside/tamper.py"))


def _grader_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "grader"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "grader":
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_what_runs_in_a_sandbox_imports_nothing_else_of_the_grader():
    # the kernel's files: grader.inside.tamper imports the package's __init__ and
    # grader.inside.instruments (installed as torch loads: the kernel serves the verdict after the
    # notebook)
    for name in KERNEL_GRADER_FILES:
        assert _grader_imports(GRADER / name) <= {"grader", "grader.inside.instruments"}, name
        dotted = {"grader." + n.removesuffix(".py").replace("/", ".") for n in KERNEL_GRADER_FILES}
        assert _grader_imports(GRADER / name) <= dotted | {"grader"}
    # the subject's source, sent as text: its own modules only (the fallback for tests)
    for name in ("inside/subject.py", "inside/wire.py", "inside/instruments.py"):
        own = {"grader.inside.instruments", "grader.inside.wire"}
        assert _grader_imports(GRADER / name) <= own, name


# --------------------------------------------------------------------------- the attack


def _submission(tmp_path: Path, square: str) -> Path:
    nb = nbformat.read(TOY, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "square":
            cell.source = square
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    return path


ATTACK = (
    "import os, sys\nfound = []\n"
    "for path in [{checks!r}, {ex1!r}, {common!r}]:\n"
    "    try:\n        found.append(open(path).read()[:80] if os.path.isfile(path) else\n"
    "                     str(os.listdir(path)))\n    except OSError:\n        pass\n"
    "for name in ('grader', 'grader.checks', 'grader.checks.common', 'grader_wire'):\n"
    "    try:\n        m = __import__(name, fromlist=['x'])\n"
    "        found.append(open(m.__file__).read()[:80])\n"
    "    except Exception:\n        pass\n"
    "found += [n for n in sys.modules if 'grader' in n and n not in\n"
    "          ('grader_wire', 'grader_instruments', 'grader_helpers')]\n"
    "def square(x):\n"
    "    raise ValueError('FOUND %d ' % len(found) + repr(found) + 'PAD' * 3000)\n")


@pytest.mark.slow
@needs_sandbox
def test_an_answer_that_hunts_for_the_checks_finds_nothing_and_says_little(tmp_path):
    checks = GRADER.resolve() / "checks"
    source = ATTACK.format(checks=str(checks), ex1=str(checks / "ex1.py"),
                           common=str(checks / "common.py"))
    verdicts = judge(TOY, _submission(tmp_path, source), Limits(cell_timeout=60))
    square = next(v for v in verdicts if v.grade_id == "test_square")
    assert square.score == 0 and square.message.startswith("square raised ValueError: FOUND 0 [")
    # the chosen text comes back as an excerpt only; nothing of the checks, no grader path
    assert square.message.count("PAD") < 70 and len(square.message) < 400
    for v in verdicts:
        assert not leaked(v.message) and str(GRADER.resolve()) not in v.message
        assert not re.search(r'File ".*grader', v.message)
