"""Edits a copier makes so that a copy no longer looks like its original, each keeping what the
code does (tests/grader/integrity/test_similarity_evasions.py checks that the report still finds the
copy).

Each evasion takes a cell's source and returns the evaded source. They work on the syntax tree
(ast) and write the cell back with ast.unparse, except `comments_and_blank_lines`, which edits
the text.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import tokenize

from similarity_copies import swap_independent_assignments

_BLOCKS = ("body", "orelse", "finalbody")


def _blocks(tree: ast.AST):
    """Every statement list in the tree (module, function and class bodies, if/else, loops...)."""
    for node in ast.walk(tree):
        for name in _BLOCKS:
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield node, name, block


def _rewrite(source: str, edit) -> str:
    tree = ast.parse(source)
    edit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def pass_after_every_statement(source: str) -> str:
    """`pass` after every statement, in every block."""
    def edit(tree):
        for node, name, block in list(_blocks(tree)):
            setattr(node, name, [s for statement in block for s in (statement, ast.Pass())])
    return _rewrite(source, edit)


class _Wrap(ast.NodeTransformer):
    def __init__(self, style: str):
        self.style = style

    def visit_Call(self, node):
        self.generic_visit(node)
        node.args = [self.wrap(a) for a in node.args]
        for kw in node.keywords:
            kw.value = self.wrap(kw.value)
        return node

    def wrap(self, value: ast.expr) -> ast.expr:
        if isinstance(value, ast.Starred):
            return value
        zero = ast.Constant(0)
        if self.style == "tuple":  # (x,)[0]
            return ast.Subscript(ast.Tuple([value], ast.Load()), zero, ast.Load())
        if self.style == "list":  # [x][0]
            return ast.Subscript(ast.List([value], ast.Load()), zero, ast.Load())
        return ast.IfExp(ast.Constant(True), value, ast.Constant(None))  # x if True else None


def wrap_arguments(style: str = "tuple"):
    """Every argument of every call wrapped: `f((x,)[0])`, `f([x][0])` or `f(x if True else
    None)`."""
    def evade(source: str) -> str:
        return _rewrite(source, lambda tree: _Wrap(style).visit(tree))
    evade.__name__ = f"wrap_arguments_{style}"
    return evade


def reorder_statements(source: str) -> str:
    """Independent neighbouring assignments swapped, and the functions and classes of the cell
    and the methods of each class written in reverse order (definitions do not run their
    bodies, so their order does not matter)."""
    def edit(tree):
        swap_independent_assignments(tree.body)
        for node in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]:
            defs = [i for i, s in enumerate(node.body)
                    if isinstance(s, (ast.FunctionDef, ast.ClassDef))]
            reordered = [node.body[i] for i in reversed(defs)]
            for i, statement in zip(defs, reordered, strict=True):
                node.body[i] = statement
    return _rewrite(source, edit)


def _leaves_loop(body: list) -> bool:
    return any(isinstance(n, (ast.Break, ast.Continue, ast.Return, ast.Yield))
               for s in body for n in ast.walk(s))


def unroll_loops_once(source: str) -> str:
    """The first pass of every `for` loop written out before it: `for i in range(a, b): S`
    becomes `if a < b:` + `i = a` + S + `for i in range(a + 1, b): S`; a loop over anything else
    takes its first item from an iterator (`it = iter(xs)`, `for x in it: S; break`, then
    `for x in it: S`)."""
    counter = iter(range(1_000_000))

    def peel(loop: ast.For) -> list[ast.stmt]:
        body = loop.body
        if loop.orelse or _leaves_loop(body) or not isinstance(loop.target, ast.Name):
            return [loop]
        it = loop.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and \
                it.func.id == "range" and 1 <= len(it.args) <= 2 and not it.keywords:
            start, stop = (ast.Constant(0), it.args[0]) if len(it.args) == 1 else it.args
            first = ast.Assign([ast.Name(loop.target.id, ast.Store())], copy.deepcopy(start))
            rest = ast.For(loop.target, ast.Call(ast.Name("range", ast.Load()), [
                ast.BinOp(copy.deepcopy(start), ast.Add(), ast.Constant(1)),
                copy.deepcopy(stop)], []), copy.deepcopy(body), [])
            test = ast.Compare(copy.deepcopy(start), [ast.Lt()], [copy.deepcopy(stop)])
            return [ast.If(test, [first, *copy.deepcopy(body), rest], [])]
        name = f"items_{next(counter)}"
        make = ast.Assign([ast.Name(name, ast.Store())],
                          ast.Call(ast.Name("iter", ast.Load()), [it], []))
        head = ast.For(loop.target, ast.Name(name, ast.Load()),
                       [*copy.deepcopy(body), ast.Break()], [])
        rest = ast.For(copy.deepcopy(loop.target), ast.Name(name, ast.Load()),
                       copy.deepcopy(body), [])
        return [make, head, rest]

    def edit(tree):
        for node, name, block in list(_blocks(tree)):
            setattr(node, name, [s for statement in block for s in (
                peel(statement) if isinstance(statement, ast.For) else [statement])])
    return _rewrite(source, edit)


_UNSAFE = (ast.Yield, ast.YieldFrom, ast.Await, ast.NamedExpr, ast.Lambda, ast.ListComp,
           ast.SetComp, ast.DictComp, ast.GeneratorExp)


def extract_helpers(source: str) -> str:
    """In every function, the longest expression assigned or returned moves into a new
    top-level helper that takes the names it uses as parameters (`return _part_1(model, X)`)."""
    def edit(tree):
        helpers = []
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            candidates = [s for s in ast.walk(function) if isinstance(s, (ast.Assign, ast.Return))
                          and s.value is not None and _extractable(s.value)]
            if not candidates:
                continue
            statement = max(candidates, key=lambda s: len(ast.unparse(s.value)))
            used = sorted({n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)
                           and n.id not in dir(builtins)})
            name = f"_part_{len(helpers) + 1}"
            args = ast.arguments([], [ast.arg(u) for u in used], None, [], [], None, [])
            helpers.append(ast.FunctionDef(name=name, args=args,
                                           body=[ast.Return(statement.value)],
                                           decorator_list=[], returns=None))
            statement.value = ast.Call(ast.Name(name, ast.Load()),
                                       [ast.Name(u, ast.Load()) for u in used], [])
        tree.body[:0] = helpers
    return _rewrite(source, edit)


def _extractable(value: ast.expr) -> bool:
    nodes = list(ast.walk(value))
    return any(isinstance(n, ast.Call) for n in nodes) and not any(
        isinstance(n, _UNSAFE) or isinstance(n, ast.Name) and n.id == "super" for n in nodes)


def comments_and_blank_lines(source: str) -> str:
    """A comment line and a blank line after every statement's last line (the text, not the
    tree, is edited: nothing else changes)."""
    ends = {tok.end[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.NEWLINE}
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        out.append(line)
        if number in ends:
            indent = line[:len(line) - len(line.lstrip())]
            out += [f"{indent}# step {number}: see above", ""]
    return "\n".join(out) + "\n"


EVASIONS = [pass_after_every_statement, wrap_arguments("tuple"), wrap_arguments("list"),
            wrap_arguments("ifexp"), reorder_statements, unroll_loops_once, extract_helpers,
            comments_and_blank_lines]


def everything(source: str) -> str:
    """All the evasions above, one after the other."""
    for evade in EVASIONS:
        source = evade(source)
    return source
