"""The grader's rooms (grader/README.md): every module lives in one, no old flat module path
imports, and what runs in a sandbox imports nothing of the trusted rooms."""

import ast
import importlib.util

import pytest
from conftest import REPO

from grader.isolation.sandbox import KERNEL_GRADER_FILES

GRADER = REPO / "grader"
ROOMS = ["inside", "isolation", "judging", "bridge", "records", "integrity", "commands"]
TOP = {"__init__.py", "__main__.py", "files.py"}
TRUSTED = [room for room in ROOMS if room != "inside"] + ["checks", "files"]
OLD = ["subject", "wire", "instruments", "tamper", "sandbox", "uids", "limits", "output_caps",
       "disk_monitor", "verdict", "proxy", "described", "hidden_tests", "nbgrader_steps",
       "nbgrader_config", "gradebook", "manual", "course", "cell_roles", "flags", "report",
       "lms_export", "collect", "roster", "progress", "shard", "resume", "export", "similarity",
       "similarity_html", "similarity_syntax", "tamper_scan", "sanitize", "graded",
       "answer_scan", "cli", "autograde", "release", "check", "publish", "owned_tree",
       "feedback_assets", "environment"]


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] == "grader"}


def test_every_module_lives_in_a_room_with_a_docstring():
    assert {p.name for p in GRADER.glob("*.py")} == TOP
    for room in ROOMS:
        init = GRADER / room / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), room
        assert [p for p in (GRADER / room).glob("*.py") if p.name != "__init__.py"], room


@pytest.mark.parametrize("old", OLD)
def test_no_old_module_path_imports(old):
    assert importlib.util.find_spec(f"grader.{old}") is None, old


def test_the_sandbox_side_imports_nothing_of_the_trusted_side():
    for path in (GRADER / "inside").glob("*.py"):
        reached = {n.split(".")[1] for n in _imports(path) if n.count(".") >= 1}
        assert not reached & set(TRUSTED), (path.name, reached)


def test_a_graded_kernel_sees_only_the_sandbox_side():
    assert set(KERNEL_GRADER_FILES) <= {"__init__.py"} | {
        f"inside/{p.name}" for p in (GRADER / "inside").glob("*.py")}
