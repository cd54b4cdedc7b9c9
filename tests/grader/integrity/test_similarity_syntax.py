"""grader/integrity/similarity_syntax.py, the syntax-tree view the similarity report compares
(tests/grader/integrity/test_similarity*.py judge it through grader.integrity.similarity): each
normalisation of `normalise_tree` on a pair of spellings that must come out the same and on a
pair that must not (a normalisation that went too far would merge different programs), and the
canonical statement order of `block_tokens` / `canonical_order` with `variables_of`."""

from __future__ import annotations

import ast
import tokenize
from typing import NamedTuple

import pytest

from grader.integrity import similarity_syntax as syntax


def normalised(source: str) -> str:
    return ast.unparse(syntax.normalise_tree(ast.parse(source)))


# (id, spelling, the same program written plainly): normalise_tree makes them one tree
SAME = [
    ("pass", "def f(x):\n    pass\n    return x\n", "def f(x):\n    return x\n"),
    ("docstring", "def f(x):\n    'doc'\n    return x\n", "def f(x):\n    return x\n"),
    ("bare_expressions", "def f(x):\n    x\n    ...\n    42\n    return x\n",
     "def f(x):\n    return x\n"),
    ("after_return", "def f(x):\n    return x\n    g(x)\n", "def f(x):\n    return x\n"),
    ("after_raise", "def f(x):\n    raise E\n    g(x)\n", "def f(x):\n    raise E\n"),
    ("continue_ending_a_loop", "for i in a:\n    g(i)\n    continue\n", "for i in a:\n    g(i)\n"),
    ("return_none_ending_a_function", "def f(x):\n    g(x)\n    return None\n",
     "def f(x):\n    g(x)\n"),
    ("bare_return_ending_a_function", "def f(x):\n    g(x)\n    return\n", "def f(x):\n    g(x)\n"),
    ("if_false", "if False:\n    g()\nh()\n", "h()\n"),
    ("while_zero", "while 0:\n    g()\nh()\n", "h()\n"),
    ("for_over_nothing", "for _ in []:\n    g()\nfor _ in range(0):\n    g()\nh()\n", "h()\n"),
    ("dead_store", "def f(x):\n    unused = x * 2\n    unused += 1\n    return x\n",
     "def f(x):\n    return x\n"),
    ("self_assignment", "x = g()\nx = x\n", "x = g()\n"),
    ("assert_true", "assert True\nassert not False\ng()\n", "g()\n"),
    ("annotations", "def f(x: int, *, k: str = 'a') -> int:\n    y: int = x\n    z: float\n"
     "    return y + k\n", "def f(x, *, k='a'):\n    y = x\n    return y + k\n"),
    ("tuple_index", "y = (x,)[0]\n", "y = x\n"),
    ("list_index", "y = [a, x][1] + [x, a][0]\n", "y = x + x\n"),
    ("dict_key", "y = {'k': x, 'j': a}['k']\n", "y = x\n"),
    ("constant_if_expression", "y = x if True else a\nz = a if 0 else x\n", "y = x\nz = x\n"),
    ("same_branches", "y = x if c else x\n", "y = x\n"),
    ("lambda_called", "y = (lambda: x)()\nz = (lambda v: v)(x)\n", "y = x\nz = x\n"),
    ("starred_list", "g(*[a, b], c)\nh([*(a, b)])\n", "g(a, b, c)\nh([a, b])\n"),
    ("double_starred_dict", "g(**{'k': v, 'j': w})\n", "g(k=v, j=w)\n"),
    ("getattr_constant", "y = getattr(o, 'name')(x)\n", "y = o.name(x)\n"),
    ("dunder_call", "y = f.__call__(x)\n", "y = f(x)\n"),
    ("add_zero_times_one", "y = x + 0 - 0 + (0 + x * 1) / 1 * (1 * a)\n", "y = x + x * a\n"),
    ("not_not", "if not not c:\n    g()\nwhile not not c:\n    g()\n",
     "if c:\n    g()\nwhile c:\n    g()\n"),
    ("constant_comparison", "if 1 == 1 and 2 > 1:\n    g()\n", "g()\n"),
    ("constant_or", "if False or 0 < 1 <= 1:\n    g()\nelse:\n    h()\n", "g()\n"),
    ("else_after_return", "def f(c):\n    if c:\n        return 1\n    else:\n        return 2\n",
     "def f(c):\n    if c:\n        return 1\n    return 2\n"),
    ("empty_if_body", "if c:\n    pass\nelse:\n    g()\n", "if not c:\n    g()\n"),
    ("empty_if_with_pure_test", "if c:\n    pass\ng()\n", "g()\n"),
    ("empty_try_body", "try:\n    pass\nexcept E:\n    g()\nelse:\n    h()\nfinally:\n    k()\n",
     "h()\nk()\n"),
    ("peeled_range", "i = 0\ng(i)\nfor i in range(1, n):\n    g(i)\n",
     "for i in range(n):\n    g(i)\n"),
    ("peeled_range_from_a", "i = a\ng(i)\nfor i in range(a + 1, n):\n    g(i)\n",
     "for i in range(a, n):\n    g(i)\n"),
    ("peeled_iterator", "it = iter(X)\nfor x in it:\n    g(x)\n    break\nfor x in it:\n    g(x)\n",
     "for x in X:\n    g(x)\n"),
    ("guarded_range", "if a < b:\n    for i in range(a, b):\n        g(i)\n",
     "for i in range(a, b):\n    g(i)\n"),
    ("range_from_zero", "for i in range(0, n):\n    g(i)\n", "for i in range(n):\n    g(i)\n"),
    ("helper_called_once", "def h(a):\n    return a + 1\ny = h(x)\n",
     "def h(a):\n    return a + 1\ny = x + 1\n"),
    ("in_a_class_body", "class C:\n    'doc'\n    pass\n    x = (1,)[0]\n",
     "class C:\n    x = 1\n"),
]

# (id, spelling, a program that differs from it): normalise_tree keeps them apart
DIFFERENT = [
    ("a_call_statement_stays", "g()\nh()\n", "h()\n"),
    ("a_store_of_a_call_stays", "def f(x):\n    unused = g(x)\n    return x\n",
     "def f(x):\n    return x\n"),
    ("a_global_store_stays", "def f():\n    global y\n    y = 1\n", "def f():\n    global y\n"),
    ("a_module_level_store_stays", "y = 1\n", ""),
    ("a_returned_value_stays", "def f():\n    g()\n    return 0\n", "def f():\n    g()\n"),
    ("a_continue_before_the_end_stays", "for i in a:\n    if i:\n        continue\n    g(i)\n",
     "for i in a:\n    if i:\n        pass\n    g(i)\n"),
    ("a_condition_stays", "if c:\n    g()\n", "g()\n"),
    ("a_negation_stays", "if not c:\n    g()\n", "if c:\n    g()\n"),
    ("an_effectful_condition_stays", "y = x if g() else x\n", "y = x\n"),
    ("an_empty_if_with_a_call_keeps_it", "if g():\n    pass\n", ""),
    ("else_after_a_plain_body_stays", "if c:\n    g()\nelse:\n    h()\n", "if c:\n    g()\nh()\n"),
    ("a_loop_over_something_stays", "for _ in [1]:\n    g()\n", ""),
    ("a_while_that_runs_stays", "while c:\n    g()\n", ""),
    ("assert_false_stays", "assert False\n", ""),
    ("an_index_out_of_range_stays", "y = (x,)[1]\n", "y = x\n"),
    ("a_missing_key_stays", "y = {'k': x}['j']\n", "y = x\n"),
    ("a_subscript_store_stays", "[a, x][1] = 2\n", "x = 2\n"),
    ("zero_minus_stays", "y = 0 - x\n", "y = x\n"),
    ("times_zero_stays", "y = x * 0\n", "y = x\n"),
    ("one_over_stays", "y = 1 / x\n", "y = x\n"),
    ("a_lambda_of_another_name_stays", "y = (lambda v: w)(x)\n", "y = x\n"),
    ("getattr_of_a_variable_stays", "y = getattr(o, name)\n", "y = o.name\n"),
    ("a_peeled_pass_of_another_body_stays", "i = 0\ng(i)\nfor i in range(1, n):\n    h(i)\n",
     "for i in range(n):\n    h(i)\n"),
    ("a_range_from_one_stays", "for i in range(1, n):\n    g(i)\n",
     "for i in range(n):\n    g(i)\n"),
    ("a_guard_of_another_range_stays", "if a <= b:\n    for i in range(a, b):\n        g(i)\n",
     "for i in range(a, b):\n    g(i)\n"),
    ("a_helper_called_twice_stays", "def h(a):\n    return a + 1\ny = h(x)\nz = h(y)\n",
     "def h(a):\n    return a + 1\ny = x + 1\nz = h(y)\n"),
    ("a_try_that_may_raise_stays", "try:\n    g()\nexcept E:\n    h()\n", "g()\n"),
]


@pytest.mark.parametrize("spelling,plain", [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_spellings_that_do_the_same_normalise_to_one_tree(spelling, plain):
    assert ast.dump(ast.parse(spelling)) != ast.dump(ast.parse(plain))  # they differ as written
    assert normalised(spelling) == normalised(plain)


@pytest.mark.parametrize("spelling,other", [c[1:] for c in DIFFERENT],
                         ids=[c[0] for c in DIFFERENT])
def test_programs_that_differ_stay_apart(spelling, other):
    assert normalised(spelling) != normalised(other)


def test_normalise_tree_leaves_its_input_alone():
    tree = ast.parse("def f(x):\n    pass\n    return (x,)[0]\n")
    before = ast.dump(tree)
    assert ast.unparse(syntax.normalise_tree(tree)) == "def f(x):\n    return x"
    assert ast.dump(tree) == before


# ---------------------------------------------------------------------------- statement order


class Tok(NamedTuple):
    text: str
    first: int
    last: int


def emit(raw: list[tokenize.TokenInfo], first: int, last: int) -> list[Tok]:
    """Each token as written, with the lines of its statement (similarity.token_stream's role)."""
    return [Tok(t.string, first, last) for t in raw if t.string.strip()]


def tokens(source: str) -> list[Tok]:
    tree = ast.parse(source)
    return syntax.block_tokens(tree.body, emit, syntax.variables_of(tree))


def texts(source: str) -> str:
    return " ".join(t.text for t in tokens(source))


@pytest.mark.parametrize("block,reordered", [
    ("x = g(a)\ny = h(a)\n", "y = h(a)\nx = g(a)\n"),
    ("def f(a):\n    x = g(a)\n    y = h(a)\n    return x + y\n",  # nested blocks too
     "def f(a):\n    y = h(a)\n    x = g(a)\n    return x + y\n"),
    ("def g():\n    return 1\nclass C:\n    pass\n",
     "class C:\n    pass\ndef g():\n    return 1\n"),
    ("a = nn.Linear(1, 1)\nb = nn.Conv2d(1, 1, 1)\n",  # a call on a module writes nothing
     "b = nn.Conv2d(1, 1, 1)\na = nn.Linear(1, 1)\n"),
], ids=["statements", "in_a_function", "definitions", "calls_on_a_module"])
def test_independent_statements_come_in_one_order(block, reordered):
    assert texts(block) == texts(reordered)


@pytest.mark.parametrize("block,reordered", [
    ("x = g(a)\ny = h(x)\n", "y = h(x)\nx = g(a)\n"),  # y reads x
    ("x = g(a)\nx = h(a)\n", "x = h(a)\nx = g(a)\n"),  # both write x
    ("out.append(g(a))\nout.append(h(a))\n", "out.append(h(a))\nout.append(g(a))\n"),
    ("self.w = g(a)\ny = self.w.t()\n", "y = self.w.t()\nself.w = g(a)\n"),  # an attribute chain
    ("x[0] = g(a)\ny = h(x)\n", "y = h(x)\nx[0] = g(a)\n"),  # a store into x changes x
    ("b = 2\nraise E\na = 1\n", "a = 1\nb = 2\nraise E\n"),  # nothing crosses a raise
], ids=["read_after_write", "write_after_write", "method_calls_on_a_variable",
        "attribute_chains", "subscript_stores", "barrier"])
def test_dependent_statements_keep_their_order(block, reordered):
    # `out = []` first: `out` is a variable of the cell, so its method calls write it
    assert texts("out = []\n" + block) != texts("out = []\n" + reordered)


def test_tokens_keep_the_lines_of_their_statement_after_reordering():
    found = tokens("def f(a):\n    y = h(a)\n\n    x = g(\n        a)\n    return x + y\n")
    lines = {t.text: (t.first, t.last) for t in found if t.text in ("def", "g", "h", "return")}
    assert lines == {"def": (1, 1), "h": (2, 2), "g": (4, 5), "return": (6, 6)}
    assert [t.text for t in found].index("g") < [t.text for t in found].index("h")


def test_canonical_order_is_the_smallest_order_the_dependencies_allow(monkeypatch):
    statements = ast.parse("y = 1\nx = 2\nz = x\n").body
    keys = [("y",), ("x",), ("z",)]
    assert syntax.canonical_order(statements, keys, {"x", "y", "z"}) == [1, 0, 2]
    assert syntax.canonical_order(statements, [("b",), ("c",), ("a",)], {"x", "y", "z"}) == \
        [0, 1, 2]  # z = x waits for x = 2
    monkeypatch.setattr(syntax, "MAX_REORDER", 2)  # a longer block keeps its order
    assert syntax.canonical_order(statements, keys, {"x", "y", "z"}) == [0, 1, 2]


def test_variables_of_are_assigned_names_and_parameters_not_imports():
    tree = ast.parse("import torch\nfrom torch import nn\n"
                     "def f(a, *args, b=1, **kw):\n    x = nn.Linear(a, b)\n"
                     "    for i in range(3):\n        y, z = i, x\n    del x\n"
                     "    return [w for w in args] + (lambda v: v)(kw)\n")
    assert syntax.variables_of(tree) == {"a", "args", "b", "kw", "x", "i", "y", "z", "w", "v"}
