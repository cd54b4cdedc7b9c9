"""The similarity report's view of a cell: its syntax tree with what does not change behaviour
taken out, in a canonical statement order (used by grader.integrity.similarity.tokenise).

Token-level normalisation (MOSS, JPlag) is defeated by edits that add tokens without changing
what the code does: a `pass` after every statement, arguments wrapped as `(x,)[0]`, `if False:`
blocks. So a cell that parses is first normalised on its syntax tree (`normalise_tree`):

* gone: `pass`, docstrings and every other expression statement that computes nothing (no call),
  statements after a `return`/`raise`/`break`/`continue` in the same block, a `continue` that
  ends a loop body, a `return`/`return None` that ends a function, `if`/`while`/`for` blocks
  that never run (`if False:`, `while 0:`, `for _ in []:`, `for _ in range(0):`), local
  variables that are assigned a call-free value and never read, `x = x`, `assert True`, type
  annotations;
* unwrapped: `(x,)[0]`, `[a, x][1]`, `{"k": x}["k"]`, `x if True else y`, `x if c else x`,
  `(lambda: x)()`, `(lambda v: v)(x)`, `f(*[a, b])`, `f(**{"k": v})`, `getattr(o, "name")`,
  `f.__call__(x)`, `x + 0`, `x * 1`, `not not c` in a condition, constant comparisons and
  `and`/`or`/`not` of constants (`if 1 == 1:` is `if True:`, whose body then takes the `if`'s
  place);
* `if c: return a` + `else: b` is `if c: return a` + `b`; an `if` with an empty body is
  `if not c:` + its `else`;
* a loop's first pass written out before it is folded back into the loop (`i = 0` + S +
  `for i in range(1, n): S`, or `it = iter(X)` + `for x in it: S; break` + `for x in it: S`),
  and `range(0, n)` is `range(n)`;
* a call of a one-line helper of the cell (`def h(a): return E`) that is called only once is
  replaced by E (a copier's extracted helper; the definition stays, and adds few tokens).

Then `block_tokens` writes each statement back out with `ast.unparse` (one layout, only the
parentheses the meaning needs), tokenises it with grader.integrity.similarity's token normalisation
(bound names V, numbers NUM, strings STR), and puts the statements of every block in a canonical
order: statements that neither write what the other reads or writes nor leave the block
(`return`, `raise`, `yield`, ...) may be swapped by a copier without changing the program, so of
the orders the dependencies allow, the one that sorts the statements' tokens first is used
(the smallest topological order). Functions and classes defined side by side thus come in one
order whatever order the cell has them in. Every token keeps the source lines of its statement.
"""

from __future__ import annotations

import ast
import copy
import heapq
import io
import operator
import tokenize
from collections.abc import Callable

MAX_REORDER = 300  # statements in one block
MARKER = "__similarity_block_{}__"  # stands for a nested block while a header is unparsed
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Is: operator.is_, ast.IsNot: operator.is_not}
_EFFECTFUL = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)
_LEAVES = (ast.Return, ast.Raise, ast.Break, ast.Continue)
_BARRIERS = (*_LEAVES, ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal,
             ast.Delete)
_BLOCKS = ("body", "orelse", "finalbody")


# ---------------------------------------------------------------- normalising the tree


def _constant(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, bytes)


def _pure(node: ast.AST) -> bool:
    """No call or other effect anywhere in the expression: evaluating it changes nothing."""
    return not any(isinstance(n, _EFFECTFUL) for n in ast.walk(node))


def _number(node: ast.AST, value: int) -> bool:
    return (isinstance(node, ast.Constant) and type(node.value) in (int, float)
            and node.value == value)


def _index(container: ast.AST, key: ast.AST) -> ast.AST | None:
    """The element `container[key]` picks when both are literals: (x,)[0], {"k": x}["k"]."""
    if isinstance(container, (ast.Tuple, ast.List)) and isinstance(key, ast.Constant) \
            and type(key.value) is int and not any(isinstance(e, ast.Starred)
                                                   for e in container.elts):
        if -len(container.elts) <= key.value < len(container.elts):
            return container.elts[key.value]
    if isinstance(container, ast.Dict) and _constant(key) and None not in container.keys \
            and all(_constant(k) for k in container.keys):
        values = {k.value: v for k, v in zip(container.keys, container.values, strict=True)}
        return values.get(key.value)
    return None


class _Simplify(ast.NodeTransformer):
    """Expression wrappers that change nothing, and blocks that never run (module docstring)."""

    def visit_Subscript(self, node):
        self.generic_visit(node)
        inner = _index(node.value, node.slice) if isinstance(node.ctx, ast.Load) else None
        return inner if inner is not None else node

    def visit_IfExp(self, node):
        self.generic_visit(node)
        node.test = _unnot(node.test)
        if _constant(node.test):
            return node.body if node.test.value else node.orelse
        if ast.dump(node.body) == ast.dump(node.orelse) and _pure(node.test):
            return node.body
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and _constant(node.operand):
            return ast.copy_location(ast.Constant(not node.operand.value), node)
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if all(_constant(v) for v in node.values):
            pick = all if isinstance(node.op, ast.And) else any
            return ast.copy_location(ast.Constant(pick(v.value for v in node.values)), node)
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        if not all(_constant(o) for o in operands) or \
                not all(type(op) in _COMPARE for op in node.ops):
            return node
        try:
            value = all(_COMPARE[type(op)](a.value, b.value)
                        for op, a, b in zip(node.ops, operands[:-1], operands[1:], strict=True))
        except TypeError:
            return node
        return ast.copy_location(ast.Constant(value), node)

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Sub)) and _number(node.right, 0) or \
                isinstance(node.op, (ast.Mult, ast.Div)) and _number(node.right, 1):
            return node.left
        if isinstance(node.op, ast.Add) and _number(node.left, 0) or \
                isinstance(node.op, ast.Mult) and _number(node.left, 1):
            return node.right
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        node.args = [a for arg in node.args for a in _spread(arg)]
        node.keywords = [k for kw in node.keywords for k in _spread_keywords(kw)]
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "__call__":
            node.func = func = func.value  # f.__call__(x) is f(x)
        if isinstance(func, ast.Lambda) and not node.keywords and _plain(func.args):
            names = [a.arg for a in func.args.args]
            if not names and not node.args:
                return func.body  # (lambda: x)()
            if len(names) == 1 == len(node.args) and isinstance(func.body, ast.Name) \
                    and func.body.id == names[0]:
                return node.args[0]  # (lambda v: v)(x)
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) == 2 \
                and not node.keywords and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) and node.args[1].value.isidentifier():
            return ast.copy_location(ast.Attribute(node.args[0], node.args[1].value,
                                                   ast.Load()), node)
        return node

    def visit_List(self, node):
        self.generic_visit(node)
        node.elts = [e for elt in node.elts for e in _spread(elt)]
        return node

    visit_Tuple = visit_Set = visit_List

    def visit_arg(self, node):
        node.annotation = None
        return node

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.returns = None
        body = _block(node.body)
        if body and isinstance(body[-1], ast.Return) and (
                body[-1].value is None or _constant(body[-1].value)
                and body[-1].value.value is None):
            body = body[:-1]  # falling off the end returns None too
        node.body = body
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        if node.value is None:
            return None
        return ast.copy_location(ast.Assign([node.target], node.value), node)

    def visit_If(self, node):
        self.generic_visit(node)
        node.test = _unnot(node.test)
        if _constant(node.test):
            return _block(node.body if node.test.value else node.orelse)
        node.body, node.orelse = _block(node.body), _block(node.orelse)
        if not node.body and not node.orelse:
            return [] if _pure(node.test) else [ast.copy_location(ast.Expr(node.test), node)]
        if not node.body:
            node.test = _negate(node.test)
            node.body, node.orelse = node.orelse, []
        if node.orelse and isinstance(node.body[-1], _LEAVES):
            rest, node.orelse = node.orelse, []
            return [node, *rest]  # `else:` after a return: the same as no else
        return node

    def visit_While(self, node):
        self.generic_visit(node)
        node.test = _unnot(node.test)
        if _constant(node.test) and not node.test.value:
            return _block(node.orelse)
        node.body, node.orelse = _loop_body(node.body), _block(node.orelse)
        return node

    def visit_For(self, node):
        self.generic_visit(node)
        iterable = node.iter
        empty = isinstance(iterable, (ast.List, ast.Tuple, ast.Set)) and not iterable.elts or (
            isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "range" and len(iterable.args) == 1
            and _number(iterable.args[0], 0))
        if empty:
            return _block(node.orelse)
        node.body, node.orelse = _loop_body(node.body), _block(node.orelse)
        return node

    visit_AsyncFor = visit_For

    def visit_Try(self, node):
        self.generic_visit(node)
        node.body = _block(node.body)
        if not node.body:  # nothing can raise: only else and finally run
            return [*_block(node.orelse), *_block(node.finalbody)]
        node.orelse, node.finalbody = _block(node.orelse), _block(node.finalbody)
        return node

    def visit_Assert(self, node):
        self.generic_visit(node)
        node.test = _unnot(node.test)
        return None if _constant(node.test) and node.test.value else node

    def generic_visit(self, node):
        super().generic_visit(node)
        for name in _BLOCKS:  # class bodies, with blocks, except handlers, match cases
            if isinstance(getattr(node, name, None), list) and not isinstance(
                    node, (ast.If, ast.While, ast.For, ast.AsyncFor, ast.Try)):
                setattr(node, name, _block(getattr(node, name)))
        return node


def _plain(args: ast.arguments) -> bool:
    return not (args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg
                or args.defaults)


def _spread(node: ast.AST) -> list[ast.AST]:
    """`*[a, b]` in a call or display is `a, b`."""
    if isinstance(node, ast.Starred) and isinstance(node.value, (ast.List, ast.Tuple)):
        return list(node.value.elts)
    return [node]


def _spread_keywords(kw: ast.keyword) -> list[ast.keyword]:
    """`**{"k": v}` in a call is `k=v`."""
    value = kw.value
    if kw.arg is None and isinstance(value, ast.Dict) and None not in value.keys and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.isidentifier()
            for k in value.keys):
        return [ast.keyword(k.value, v) for k, v in zip(value.keys, value.values, strict=True)]
    return [kw]


def _unnot(test: ast.AST) -> ast.AST:
    """`not not c` is `c` where only truth matters (a condition)."""
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(
            test.operand, ast.UnaryOp) and isinstance(test.operand.op, ast.Not):
        test = test.operand.operand
    return test


def _negate(test: ast.AST) -> ast.AST:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand
    return ast.copy_location(ast.UnaryOp(ast.Not(), test), test)


def _block(statements: list) -> list:
    """A block without statements that do nothing and without what follows a return/raise."""
    out = []
    for statement in statements:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and _pure(statement.value):
            continue  # a docstring, `...`, a bare name or constant
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
                statement.targets[0], ast.Name) and isinstance(statement.value, ast.Name) \
                and statement.targets[0].id == statement.value.id:
            continue  # x = x
        out.append(statement)
        if isinstance(statement, _LEAVES):
            break  # unreachable from here to the end of the block
    return out


def _loop_body(statements: list) -> list:
    body = _block(statements)
    return body[:-1] if body and isinstance(body[-1], ast.Continue) else body


def _drop_dead_stores(function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    """Assignments of call-free values to local names the function never reads."""
    read = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)}
    shared = {name for n in ast.walk(function) if isinstance(n, (ast.Global, ast.Nonlocal))
              for name in n.names}

    def dead(statement: ast.stmt) -> bool:
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AugAssign):
            targets = [statement.target]
        else:
            return False
        return _pure(statement.value) and all(
            isinstance(t, ast.Name) and t.id not in read and t.id not in shared
            for t in targets)

    def prune(node: ast.AST) -> None:
        for name in _BLOCKS:
            block = getattr(node, name, None)
            if isinstance(block, list):
                setattr(node, name, [s for s in block if not dead(s)])
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                prune(child)

    prune(function)


def _same(a: list | ast.AST, b: list | ast.AST) -> bool:
    dump = (lambda x: [ast.dump(n) for n in x]) if isinstance(a, list) else ast.dump
    return isinstance(a, list) == isinstance(b, list) and dump(a) == dump(b)


def _range_from(loop: ast.AST, start: ast.AST) -> ast.AST | None:
    """`stop` when `loop` is `for T in range(start + 1, stop)`, else None."""
    it = getattr(loop, "iter", None)
    if not (isinstance(loop, ast.For) and isinstance(it, ast.Call) and isinstance(
            it.func, ast.Name) and it.func.id == "range" and len(it.args) == 2
            and not it.keywords):
        return None
    first = it.args[0]
    plus_one = ast.BinOp(start, ast.Add(), ast.Constant(1))
    if _same(first, plus_one) or (isinstance(start, ast.Constant) and type(start.value) is int
                                   and _same(first, ast.Constant(start.value + 1))):
        return it.args[1]
    return None


def _fold_peeled(block: list) -> list:
    """A loop whose first pass is written out before it is the loop:
    `T = a` + S + `for T in range(a + 1, b): S` is `for T in range(a, b): S`, and
    `it = iter(X)` + `for T in it: S; break` + `for T in it: S` is `for T in X: S`."""
    out = list(block)
    j = 0
    while j < len(out):
        loop = out[j]
        if not isinstance(loop, ast.For) or loop.orelse or not isinstance(loop.target, ast.Name):
            j += 1
            continue
        i = j - len(loop.body) - 1  # where `T = a` would be
        head = out[i] if i >= 0 else None
        if _assigns(head, loop.target.id) and _range_from(loop, head.value) is not None and \
                _same(loop.body, out[i + 1:j]):
            loop.iter.args[0] = head.value
            out[i:j + 1] = [loop]
            j = i + 1
            continue
        head, first = (out[j - 2], out[j - 1]) if j >= 2 else (None, None)
        if isinstance(loop.iter, ast.Name) and _assigns(head, loop.iter.id) and isinstance(
                head.value, ast.Call) and isinstance(head.value.func, ast.Name) and \
                head.value.func.id == "iter" and len(head.value.args) == 1 and isinstance(
                first, ast.For) and not first.orelse and _same(first.iter, loop.iter) and \
                _same(first.target, loop.target) and first.body and isinstance(
                first.body[-1], ast.Break) and _same(first.body[:-1], loop.body):
            loop.iter = head.value.args[0]
            out[j - 2:j + 1] = [loop]
            j -= 1
            continue
        j += 1
    return [_unguarded(s) for s in out]


def _assigns(statement: ast.AST | None, name: str) -> bool:
    """Whether `statement` is `name = value`."""
    return isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(
        statement.targets[0], ast.Name) and statement.targets[0].id == name


def _unguarded(statement: ast.stmt) -> ast.stmt:
    """`if a < b: for T in range(a, b): S` is the loop alone (it runs no pass otherwise)."""
    if isinstance(statement, ast.If) and not statement.orelse and len(statement.body) == 1:
        loop, test = statement.body[0], statement.test
        it = getattr(loop, "iter", None)
        if isinstance(loop, ast.For) and isinstance(it, ast.Call) and isinstance(
                it.func, ast.Name) and it.func.id == "range" and len(it.args) == 2 and \
                isinstance(test, ast.Compare) and len(test.ops) == 1 and \
                isinstance(test.ops[0], ast.Lt) and _same(test.left, it.args[0]) and \
                _same(test.comparators[0], it.args[1]):
            return loop
    return statement


def _canonical_range(node: ast.AST) -> None:
    """`range(0, n)` is `range(n)`."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and \
                call.func.id == "range" and len(call.args) == 2 and _number(call.args[0], 0):
            call.args = call.args[1:]


class _Inline(ast.NodeTransformer):
    """A call of a function of the cell whose body is one `return E`, called once in the cell:
    the call is E with the arguments in place of the parameters (a helper extracted by a copier
    is put back; its definition stays)."""

    def __init__(self, tree: ast.Module):
        calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name)]
        self.helpers = {
            f.name: f for f in tree.body if isinstance(f, ast.FunctionDef) and len(f.body) == 1
            and isinstance(f.body[0], ast.Return) and f.body[0].value is not None
            and _plain(f.args) and not f.decorator_list and calls.count(f.name) == 1}

    def visit_Call(self, node):
        self.generic_visit(node)
        helper = self.helpers.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if helper is None or node.keywords or len(node.args) != len(helper.args.args) or \
                any(isinstance(a, ast.Starred) for a in node.args):
            return node
        values = {a.arg: v for a, v in zip(helper.args.args, node.args, strict=True)}
        return _Substitute(values).visit(copy.deepcopy(helper.body[0].value))


class _Substitute(ast.NodeTransformer):
    def __init__(self, values: dict[str, ast.AST]):
        self.values = values

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return copy.deepcopy(self.values[node.id])
        return node


def normalise_tree(tree: ast.Module) -> ast.Module:
    """A copy of `tree` without what does not change behaviour (see the module docstring)."""
    tree = _Simplify().visit(copy.deepcopy(tree))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _drop_dead_stores(node)
    tree = _Inline(tree).visit(tree)
    for node in reversed(list(ast.walk(tree))):  # inner blocks first
        for name in _BLOCKS:
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(node, name, _fold_peeled(block))
    _canonical_range(tree)
    tree = _Simplify().visit(tree)  # a block emptied by the previous steps
    tree.body = _block(tree.body)
    return ast.fix_missing_locations(tree)


# ---------------------------------------------------------------- dependencies between statements


def _chain(node: ast.AST) -> str | None:
    """'self.conv1.weight' for a chain of names and attributes, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _chain(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


class _Effects(ast.NodeVisitor):
    """What a statement reads and writes (names and attribute chains), and whether it may leave
    the block or reach beyond it (a barrier no other statement is moved across). A method call
    on a variable (`layers.append(x)`, `model.eval()`) writes that variable; a call on a module
    (`nn.Linear(...)`) writes nothing."""

    def __init__(self, variables: set[str]):
        self.variables = variables
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.barrier = False

    def _record(self, name: str, ctx: ast.AST) -> None:
        (self.reads if isinstance(ctx, ast.Load) else self.writes).add(name)

    def visit_Name(self, node):
        self._record(node.id, node.ctx)

    def visit_Attribute(self, node):
        chain = _chain(node)
        if chain is None:
            self.generic_visit(node)
        else:
            self._record(chain, node.ctx)

    def visit_Subscript(self, node):
        target = _chain(node.value)
        if target is not None and not isinstance(node.ctx, ast.Load):
            self.writes.add(target)  # x[i] = v changes x
        else:
            self.visit(node.value)
        self.visit(node.slice)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute):
            receiver = _chain(node.func.value)
            if receiver is not None and receiver.split(".")[0] in self.variables:
                self.writes.add(receiver)
        self.generic_visit(node)

    def _definition(self, node, parts: list) -> None:
        self.writes.add(node.name)
        for part in parts:  # evaluated when defined; the body only when called
            self.visit(part)

    def visit_FunctionDef(self, node):
        self._definition(node, [*node.decorator_list, *node.args.defaults,
                                *(d for d in node.args.kw_defaults if d is not None)])

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._definition(node, [*node.decorator_list, *node.bases, *node.keywords])

    def visit_Lambda(self, node):
        for default in node.args.defaults:
            self.visit(default)
        self.reads |= {n.id for n in ast.walk(node.body) if isinstance(n, ast.Name)}

    def visit_alias(self, node):
        if node.name == "*":
            self.barrier = True
        self.writes.add(node.asname or node.name.split(".")[0])

    def generic_visit(self, node):
        if isinstance(node, _BARRIERS):
            self.barrier = True
        super().generic_visit(node)


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _conflict(a: _Effects, b: _Effects) -> bool:
    if a.barrier or b.barrier:
        return True
    return any(_related(w, x) for w in a.writes for x in b.reads | b.writes) or \
        any(_related(w, r) for w in b.writes for r in a.reads)


def canonical_order(statements: list[ast.stmt], keys: list[tuple[str, ...]],
                    variables: set[str]) -> list[int]:
    """The order (indices) in which to write the statements: of the orders that keep every
    pair that depends on each other as it is, the one whose keys come first. A block longer
    than MAX_REORDER statements (no answer has one; the pairs cost quadratic time) keeps its
    order."""
    if len(statements) > MAX_REORDER:
        return list(range(len(statements)))
    effects = []
    for statement in statements:
        visitor = _Effects(variables)
        visitor.visit(statement)
        effects.append(visitor)
    waiting = [0] * len(statements)
    after: list[list[int]] = [[] for _ in statements]
    for j in range(len(statements)):
        for i in range(j):
            if _conflict(effects[i], effects[j]):
                after[i].append(j)
                waiting[j] += 1
    ready = [(keys[i], i) for i in range(len(statements)) if not waiting[i]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for j in after[i]:
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, (keys[j], j))
    return order


def variables_of(tree: ast.AST) -> set[str]:
    """Names a cell assigns or takes as parameters (not imports: `nn.Linear(...)` changes no
    variable of the cell)."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
            and not isinstance(n.ctx, ast.Load)} | \
        {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}


# ---------------------------------------------------------------- writing tokens


Emit = Callable[[list[tokenize.TokenInfo], int, int], list]  # (tokens, first line, last line)


def _raw(text: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(text).readline))


def _with_markers(statement: ast.stmt, first: int) -> tuple[ast.stmt, list[tuple[list, int]]]:
    """A shallow copy of a compound statement whose blocks are each one marker name (block i:
    MARKER.format(i)), and the blocks, each with the source line of the header part written just
    before it (the `def`/`if` line, `else:`, `except E:`)."""
    blocks: list[tuple[list, int]] = []

    def mark(owner: ast.AST, name: str, line: int) -> None:
        block = getattr(owner, name, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            blocks.append((block, line))
            setattr(owner, name, [ast.Expr(ast.Name(MARKER.format(len(blocks) - 1)))])

    shell = copy.copy(statement)
    for name in _BLOCKS:
        block = getattr(shell, name, None)
        line = first if name == "body" else (block[0].lineno - 1 if block else first)
        mark(shell, name, max(line, first))
    for name in ("handlers", "cases"):  # try's except clauses, match's cases
        if isinstance(getattr(shell, name, None), list):
            parts = [copy.copy(part) for part in getattr(shell, name)]
            for part in parts:
                line = getattr(part, "lineno", None) or getattr(part.pattern, "lineno", first)
                mark(part, "body", line)
            setattr(shell, name, parts)
    return shell, blocks


def statement_tokens(statement: ast.stmt, emit: Emit, variables: set[str]) -> list:
    """The normalised tokens of one statement, nested blocks in canonical order."""
    first = min([statement.lineno, *(d.lineno for d in
                                     getattr(statement, "decorator_list", []))])
    shell, blocks = _with_markers(statement, first)
    header_end = max([statement.lineno, *(
        getattr(node, "end_lineno", None) or statement.lineno
        for name, value in ast.iter_fields(statement) if name not in (*_BLOCKS, "handlers")
        for child in (value if isinstance(value, list) else [value])
        if isinstance(child, ast.AST) for node in ast.walk(child))])  # `def` with arguments
    if not blocks:  # a simple statement, or a compound one whose blocks are all empty
        return emit(_raw(ast.unparse(shell)), first, statement.end_lineno or first)
    out: list = []
    pending: list[tokenize.TokenInfo] = []
    line = first
    for tok in _raw(ast.unparse(shell)):
        if tok.type == tokenize.NAME and tok.string.startswith(MARKER.format("")[:-2]):
            block, line = blocks[int(tok.string.split("_")[-3])]
            out += emit(pending, line, header_end if line == first else line)
            out += block_tokens(block, emit, variables)
            pending = []
        else:
            pending.append(tok)
    out += emit(pending, line, line)
    return out


def block_tokens(statements: list[ast.stmt], emit: Emit, variables: set[str]) -> list:
    """The normalised tokens of a block, its statements in canonical order."""
    parts = [statement_tokens(s, emit, variables) for s in statements]
    keys = [tuple(t.text for t in part) for part in parts]
    return [tok for i in canonical_order(statements, keys, variables) for tok in parts[i]]
