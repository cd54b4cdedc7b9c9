"""The released exercise notebooks stand on their own.

A student downloads one notebook from exercises/ and runs it anywhere (a laptop, Colab) with only
torch, numpy, matplotlib and scikit-learn installed. So no code cell of a release may import or
name the course library (`resnet_course`) or the instructor's `grader`, nothing of the
solutions or hidden tests may be left in it, and every import must come from an allow-list of
those packages and the standard-library modules the notebooks use. The book lists every exercise.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import torch
import yaml
from conftest import REPO

from grader.bridge.course import COURSE_PACKAGES, answer_may_import
from grader.integrity.graded import graded_definitions, normalised_tokens, shows
from resnet_course.data import spirals as library_spirals
from resnet_course.models import ResidualBlock as LibraryResidualBlock
from resnet_course.models import plain_mlp as library_plain_mlp
from resnet_course.models import residual_mlp as library_residual_mlp

ASSIGNMENTS = ["ex1_degradation", "ex2_identity", "ex3_shortcuts", "ex4_image_resnets",
               "ex5_gpu_training"]
FORBIDDEN = set(COURSE_PACKAGES)  # grader.bridge.course: the one rule on what answers may touch
ALLOWED = {"torch", "numpy", "matplotlib", "sklearn", "math", "random", "time", "os", "typing",
           "collections", "copy", "itertools", "functools", "warnings", "dataclasses"}
LEFTOVERS = ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS")
MODULE_STRING = re.compile(rf"^({'|'.join(map(re.escape, COURSE_PACKAGES))})(\.|$)")
GRADED = graded_definitions(REPO)


def release_path(assignment_id: str) -> Path:
    return REPO / "exercises" / assignment_id / f"{assignment_id}.ipynb"


def code_cells(assignment_id: str) -> list[tuple[str, str]]:
    """(label, source) of every code cell of the release; IPython magics and shell lines dropped."""
    nb = nbformat.read(release_path(assignment_id), as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        label = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {index}")
        lines = [line for line in cell.source.splitlines()
                 if not line.lstrip().startswith(("%", "!"))]
        cells.append((label, "\n".join(lines)))
    return cells


def imported_modules(tree: ast.AST) -> list[str]:
    """Absolute module names of every import statement, at any depth (functions included)."""
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append("." * node.level + (node.module or ""))
    return modules


def forbidden_uses(tree: ast.AST) -> list[str]:
    """Names, attributes and strings (importlib, __import__) that reach resnet_course or grader."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN:
            found.append(f"name {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            found.append(f"attribute .{node.attr}")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and MODULE_STRING.match(node.value)):
            found.append(f"string {node.value!r}")
    return found


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_release_has_no_solution_or_hidden_test_text(assignment_id):
    text = release_path(assignment_id).read_text(encoding="utf-8")
    leftovers = [marker for marker in LEFTOVERS if marker in text]
    assert not leftovers, f"{assignment_id}: the release still contains {leftovers}"


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_release_neither_imports_nor_uses_course_packages(assignment_id):
    problems = []
    for label, source in code_cells(assignment_id):
        tree = ast.parse(source)  # a release that does not parse is a bug too
        for module in imported_modules(tree):
            if not answer_may_import(module) or module.startswith("."):
                problems.append(f"{label}: imports {module}")
        problems += [f"{label}: uses {use}" for use in forbidden_uses(tree)]
    assert not problems, (f"{assignment_id} must run without the course packages "
                          f"(resnet_course, grader): {problems}")


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_release_imports_only_allowed_packages(assignment_id):
    outside = sorted({f"{label}: {module}"
                      for label, source in code_cells(assignment_id)
                      for module in imported_modules(ast.parse(source))
                      if module.split(".")[0] not in ALLOWED})
    assert not outside, (f"{assignment_id} imports modules a student may not have "
                         f"(allowed: {sorted(ALLOWED)}): {outside}")


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_release_hands_out_no_graded_implementation(assignment_id):
    """No code cell of a release shows an answer of any assignment (an earlier exercise's
    included): the exercise pages are rendered in the book and published. The fast form of
    tests/book/test_editions.py's HTML check, on the same token streams
    (grader.integrity.graded.shows)."""
    shown = sorted({f"{label}: {d.origin}:{d.name}" for label, source in code_cells(assignment_id)
                    for d in GRADED if shows(d.tokens, normalised_tokens(source))})
    assert not shown, f"{assignment_id} shows graded implementations: {shown}"


def test_sanity_of_the_scan():
    """The scan finds what it is meant to find (so that the tests above can fail)."""
    tree = ast.parse("import torch\nfrom resnet_course.data import spirals\n"
                     "def f():\n    import grader.checks\n"
                     "m = __import__('resnet_course.models')\nx = grader.checks")
    assert imported_modules(tree) == ["torch", "resnet_course.data", "grader.checks"]
    assert forbidden_uses(tree) == ["string 'resnet_course.models'", "name grader"]


def test_book_lists_every_exercise():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    files = set()

    def collect(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(toc)
    missing = [a for a in ASSIGNMENTS if f"exercises/{a}/{a}" not in files]
    assert not missing, f"_toc.yml does not list the exercise pages {missing}"


def given_namespace(assignment_id: str) -> dict:
    """Run the release's locked, ungraded code cells (imports, given data and models)."""
    nb = nbformat.read(release_path(assignment_id), as_version=4)
    namespace: dict = {"__name__": "__main__"}
    threads = torch.get_num_threads()  # the setup cells set one thread; restore it afterwards
    try:
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("locked") and not meta.get("grade"):
                exec(compile(cell.source, f"<{assignment_id}:{meta['grade_id']}>", "exec"),
                     namespace)
    finally:
        torch.set_num_threads(threads)
    return namespace


@pytest.mark.parametrize("assignment_id", ["ex1_degradation", "ex2_identity"])
@pytest.mark.parametrize("kwargs", [dict(n_per_class=100, num_classes=3, noise=0.2, seed=0),
                                    dict(n_per_class=7, num_classes=4, noise=0.5, seed=3)])
def test_given_spirals_match_the_library(assignment_id, kwargs):
    """The notebooks' own spirals are the chapters' spirals (same experiment, same numbers)."""
    X, y = given_namespace(assignment_id)["spirals"](**kwargs)
    X_lib, y_lib = library_spirals(**kwargs)
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(X, X_lib) and torch.equal(y, y_lib)


@pytest.mark.parametrize("num_blocks", [1, 9])
def test_plain_twin_of_ex2_is_the_plain_mlp_of_ex1(num_blocks):
    """ex2's given plain_twin (its plain comparison network, built without handing out ex1's
    plain_mlp) turns a residual MLP into the library's plain_mlp of the same depth: the same
    layers in the same order with the same weights, the same function, no shortcut left."""
    namespace = given_namespace("ex2_identity")
    namespace["ResidualBlock"] = LibraryResidualBlock  # the student's class, in the notebook
    torch.manual_seed(0)
    residual = library_residual_mlp(2, 32, num_blocks, 3)
    before = {k: v.clone() for k, v in residual.state_dict().items()}
    twin = namespace["plain_twin"](residual)
    torch.manual_seed(0)
    plain = library_plain_mlp(2, 32, 2 * num_blocks + 2, 3)
    twin_linears = [m for m in twin.modules() if isinstance(m, torch.nn.Linear)]
    plain_linears = [m for m in plain.modules() if isinstance(m, torch.nn.Linear)]
    assert len(twin_linears) == len(plain_linears) == 2 * num_blocks + 2
    assert all(torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
               for a, b in zip(twin_linears, plain_linears, strict=True))
    X = torch.randn(40, 2)
    assert torch.allclose(twin(X), plain(X), atol=1e-6)
    assert not any(isinstance(m, LibraryResidualBlock) for m in twin.modules())
    # the residual model itself is left as it was (the twin is a copy)
    assert sum(isinstance(m, LibraryResidualBlock) for m in residual.modules()) == num_blocks
    assert all(torch.equal(v, before[k]) for k, v in residual.state_dict().items())
    with pytest.raises(ValueError, match="no ResidualBlock"):
        namespace["plain_twin"](torch.nn.Sequential(torch.nn.Linear(2, 3)))
