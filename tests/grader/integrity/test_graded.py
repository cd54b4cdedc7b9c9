"""grader/integrity/graded.py: which definitions are graded, and the token matcher that finds them
on a page.

The matcher is calibrated here, without building the book: it must find every graded definition
in a renamed and reformatted copy of itself, and must not find any of them in the library's
ungraded code (which the chapters show) or in the exercises' stubs.
"""

from __future__ import annotations

import ast
import builtins

import nbformat
import pytest
from conftest import REPO as ROOT

from grader.integrity.graded import (
    LIBRARY_GRADED,
    MIN_RUN,
    graded_definitions,
    library_definitions,
    longest_common_run,
    normalised_tokens,
    shows,
)

CONTRACT = {  # DESIGN.md's exercise contract: every name must be found in an answer cell
    "plain_mlp", "training_error", "layer_gradient_norms", "ResidualBlock", "zero_init_residual_",
    "residual_mlp", "ZeroPadShortcut", "ProjectionShortcut", "BasicBlock", "resnet_cifar",
    "count_parameters", "pick_device", "train_one_epoch", "evaluate",
}
DEFS = graded_definitions(ROOT)


class _Rename(ast.NodeTransformer):
    """Give every local name, parameter and definition a new name (as a copier would)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _new(self, name: str) -> str:
        if name in {"self", "nn", "torch", "F", "math"} or name in dir(builtins):
            return name
        return self.names.setdefault(name, f"renamed_{len(self.names)}")

    def visit_Name(self, node):
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._new(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node):
        node.name = self._new(node.name)
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node):
        node.name = self._new(node.name)
        self.generic_visit(node)
        return node


def disguised(source: str) -> str:
    """Renamed, without annotations, re-laid-out by ast.unparse, with a comment on every line."""
    tree = _Rename().visit(ast.parse(source))
    code = ast.unparse(ast.fix_missing_locations(tree))
    return "\n".join(f"{line}  # copied" if line.strip() else line
                     for line in code.splitlines())


def test_every_contract_name_comes_from_an_answer_cell():
    from_answers = {d.name for d in DEFS if d.origin.startswith("solutions/")}
    assert CONTRACT <= from_answers, f"not found in answer cells: {CONTRACT - from_answers}"


def test_library_map_is_current():
    names = {(d.origin, d.name) for d in library_definitions(ROOT / "src" / "resnet_course")}
    for module, listed in LIBRARY_GRADED.items():
        assert {(f"resnet_course.{module}", n) for n in listed} <= names


def test_a_stale_library_map_is_an_error(tmp_path, monkeypatch):
    src = tmp_path / "resnet_course"
    src.mkdir()
    for module in ("models", "train", "mlp_experiments", "device"):
        (src / f"{module}.py").write_text("def unrelated():\n    return 1\n")
    with pytest.raises(LookupError, match="does not define"):
        library_definitions(src)


def test_planned_names_are_picked_up_by_pattern(tmp_path, monkeypatch):
    src = tmp_path / "resnet_course"
    src.mkdir()
    monkeypatch.setattr("grader.integrity.graded.LIBRARY_GRADED", {"models": ()})
    (src / "models.py").write_text("class PreActBlock:\n    pass\n\ndef count_macs(m):\n"
                                   "    return 0\n\ndef helper():\n    return 2\n")
    for module in ("train", "mlp_experiments"):
        (src / f"{module}.py").write_text("")
    assert {d.name for d in library_definitions(src)} == {"PreActBlock", "count_macs"}


@pytest.mark.parametrize("definition", DEFS, ids=lambda d: f"{d.origin}:{d.name}")
def test_a_renamed_reformatted_copy_is_found(definition):
    copy = disguised(definition.source)
    assert copy != definition.source
    assert shows(definition.tokens, normalised_tokens(copy)), copy
    # ... also inside a longer block, between other code
    block = f"import torch\nX = torch.randn(4, 2)\n\n{copy}\n\nprint(X.shape)\n"
    assert shows(definition.tokens, normalised_tokens(block))


def ungraded_library_code() -> list[tuple[str, str]]:
    graded = {(d.origin, d.name) for d in DEFS}
    found = []
    for path in sorted((ROOT / "src" / "resnet_course").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if (isinstance(node, (ast.FunctionDef, ast.ClassDef))
                    and (f"resnet_course.{path.stem}", node.name) not in graded):
                found.append((f"{path.stem}.{node.name}", ast.get_source_segment(source, node)))
    return found


def test_ungraded_library_code_shows_no_graded_definition():
    """What the chapters may show (training loops, experiments, plotting, helpers) never counts
    as a graded implementation; the margin below MIN_RUN is printed on failure."""
    hits = []
    for name, code in ungraded_library_code():
        tokens = normalised_tokens(code)
        hits += [(name, f"{d.origin}:{d.name}", longest_common_run(d.tokens, tokens))
                 for d in DEFS if shows(d.tokens, tokens)]
    assert len(ungraded_library_code()) > 50
    assert not hits, hits


def test_stubs_of_the_released_exercises_show_nothing():
    for path in sorted((ROOT / "exercises").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if not cell.metadata.get("nbgrader", {}).get("solution"):
                continue
            tokens = normalised_tokens(cell.source)
            assert not [d.name for d in DEFS if shows(d.tokens, tokens)], (path, cell.source)


def test_normalisation_drops_layout_comments_docstrings_and_local_names():
    a = ('def f(x: int) -> int:\n    """Doc."""\n    # comment\n    y = x.relu()  # why\n'
         "    return y\n")
    b = "def g(z):\n    w = z.relu()\n\n\n    return w\n"
    assert normalised_tokens(a) == normalised_tokens(b) == ("V", "=", "V", ".", "relu", "(",
                                                            ")", "return", "V")
    # attributes and keyword arguments are the API used, and stay
    assert normalised_tokens("nn.Conv2d(c, c, 3, padding=1)") != normalised_tokens(
        "nn.Conv2d(c, c, 3, stride=1)")


def test_a_short_common_run_is_not_a_match():
    definition = normalised_tokens(disguised(next(d.source for d in DEFS
                                                   if d.name == "BasicBlock")))
    step = "logits = model(X)\nloss = F.cross_entropy(logits, y)\nloss.backward()\n"
    assert longest_common_run(definition, normalised_tokens(step)) < MIN_RUN
    assert not shows(definition, normalised_tokens(step))
