"""The static tamper scan: answer code must implement, not rebind what the tests rely on.

An AST scan of the student's cells, run by the grader outside the kernel (nothing the notebook
does can hide from it). It looks for rebinding of torch/numpy/builtins attributes,
``torch.Tensor`` methods, ``sys.modules`` edits, IPython hooks (events, input/AST transformers,
custom exception handlers), frame and tracing tricks, dynamic code, comparison-rigging dunders,
and imports of the course packages (grader.bridge.course.answer_may_import). Each check returns
human-readable reasons (empty list: nothing suspicious); grader.records.flags.tamper_flags turns
them, with the kernel's own runtime report (grader.inside.tamper), into the flag `tamper-suspected`.
A review aid: no score depends on it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from grader.bridge import cell_roles
from grader.bridge.course import COURSE_PACKAGES, answer_may_import
from grader.inside.tamper import SENSITIVE_BUILTINS

ROOT_MODULES = {"torch", "numpy", "builtins", "sys", "IPython", "ipykernel", *COURSE_PACKAGES,
                "importlib", "math", "nbgrader", "unittest"}
IPYTHON_ATTRS = {"input_transformers_cleanup", "input_transformers_post", "ast_transformers",
                 "set_custom_exc", "custom_exceptions", "CustomTB", "showtraceback",
                 "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                 "run_ast_nodes", "run_code", "input_transformer_manager", "display_formatter",
                 "displayhook", "display_pub", "do_execute", "execute_request"}
FRAME_ATTRS = {"_getframe", "currentframe", "f_back", "f_globals", "f_locals", "f_builtins",
               "tb_frame", "gi_frame", "cr_frame", "settrace", "setprofile", "stack",
               "getouterframes", "get_referrers", "get_referents", "get_objects",
               "__subclasses__", "_current_frames"}
RIGGING_DUNDERS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__",
                   "__float__", "__int__", "__index__", "__abs__", "__sub__", "__rsub__",
                   "__instancecheck__", "__subclasscheck__", "__torch_function__",
                   "__torch_dispatch__", "__array_function__", "__array_ufunc__", "__len__"}
DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "breakpoint"}
MODULE_MUTATORS = {"pop", "popitem", "update", "setdefault", "clear", "__setitem__",
                   "__delitem__", "insert", "append", "extend", "remove"}
SYS_SENSITIVE = {"modules", "meta_path", "path_hooks", "excepthook", "displayhook", "settrace",
                 "setprofile", "breakpointhook", "unraisablehook", "stdout", "stderr",
                 "audit", "addaudithook"}


def _chain(node: ast.AST) -> list[str] | None:
    """`a.b.c` -> ['a', 'b', 'c']; `get_ipython().x` -> ['get_ipython()', 'x']; else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        parts.append(node.func.id + "()")
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        inner = _chain(node.func)
        if inner is None:
            return None
        parts.append(".".join(inner) + "()")
    else:
        return None
    return parts[::-1]


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str]):
        self.aliases = dict(aliases)  # local name -> module path ("np" -> "numpy")
        self.reasons: list[str] = []
        self.depth = 0  # 0: top level of the cell
        self.sys_reads: list[ast.Attribute] = []  # sys.modules etc.: judged after the walk

    def flag(self, node: ast.AST, text: str) -> None:
        self.reasons.append(f"line {getattr(node, 'lineno', '?')}: {text}")

    def root_module(self, parts: list[str] | None) -> str | None:
        if not parts:
            return None
        head = self.aliases.get(parts[0], parts[0] if parts[0] in ROOT_MODULES else None)
        if parts[0] in ("__builtins__", "builtins"):
            head = "builtins"
        if parts[0] in ("get_ipython()", "IPython.get_ipython()"):
            head = "IPython"
        return head

    # imports ---------------------------------------------------------------------------
    def _check_import(self, node: ast.AST, module: str) -> None:
        if not answer_may_import(module):
            self.flag(node, f"imports {module} instead of implementing it")
        if module.split(".")[0] == "ctypes":
            self.flag(node, "imports ctypes (can rewrite the interpreter's memory)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import(node, alias.name)
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self._check_import(node, f"{module}.{alias.name}" if module else alias.name)
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self.generic_visit(node)

    # bindings --------------------------------------------------------------------------
    def _check_target(self, target: ast.AST, node: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._check_target(elt, node, verb)
            return
        if isinstance(target, ast.Attribute):
            parts = _chain(target)
            root = self.root_module(parts)
            if root is not None and root.split(".")[0] in ROOT_MODULES:
                resolved = ".".join([root] + parts[1:])  # aliases resolved: T.equal -> torch.equal
                self.flag(node, f"{verb} {resolved} (part of {root.split('.')[0]})")
            elif target.attr in IPYTHON_ATTRS or target.attr in RIGGING_DUNDERS | {
                    "__class__", "__code__", "__dict__", "__globals__"}:
                self.flag(node, f"{verb} the attribute {target.attr}")
        elif isinstance(target, ast.Subscript):
            parts = _chain(target.value)
            root = self.root_module(parts)
            text = ".".join(parts) if parts else ""
            if root is not None and root.split(".")[0] in ROOT_MODULES:
                self.flag(node, f"{verb} an item of {text}")
            elif text.endswith(("__dict__", "vars()", "globals()")) or text in ("vars()",):
                self.flag(node, f"{verb} an item of {text}")
        elif isinstance(target, ast.Name) and self.depth == 0:
            if target.id in SENSITIVE_BUILTINS:
                self.flag(node, f"{verb} the builtin name {target.id} at top level")
            elif target.id in ("torch", "np", "numpy", "nn", "F") and verb != "imports":
                self.flag(node, f"{verb} the module name {target.id}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, node, "rebinds")
        # plain aliasing: t = torch ; t.allclose = ...
        if isinstance(node.value, (ast.Name, ast.Attribute)):
            root = self.root_module(_chain(node.value))
            if root is not None:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.aliases[target.id] = ".".join([root] + _chain(node.value)[1:])
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node, "changes")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target, node, "rebinds")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target, node, "deletes")
        self.generic_visit(node)

    def _scoped(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if self.depth == 0 and node.name in SENSITIVE_BUILTINS:
            self.flag(node, f"defines a function named like the builtin {node.name}")
        self._scoped(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = _scoped

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for stmt in node.body:
            names = []
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [stmt.name]
            elif isinstance(stmt, ast.Assign):
                names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            for name in names:
                if name in RIGGING_DUNDERS:
                    self.flag(stmt, f"class {node.name} defines {name}, which can make "
                                    "comparisons or type checks lie")
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self.flag(node, f"class {node.name} uses a custom metaclass")
        self._scoped(node)

    # calls and attribute reads ---------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in DYNAMIC_CALLS:
            self.flag(node, f"calls {func.id}() (dynamic code cannot be checked)")
        if isinstance(func, ast.Name) and func.id in ("setattr", "delattr") and node.args:
            root = self.root_module(_chain(node.args[0]))
            if root is not None or isinstance(node.args[0], ast.Call):
                self.flag(node, f"{func.id}() on {ast.unparse(node.args[0])}")
        parts = _chain(func)
        if parts:
            root = self.root_module(parts)
            dotted = ".".join(parts)
            if root == "importlib" or (root or "").startswith("importlib."):
                self.flag(node, f"calls {dotted}() (dynamic import)")
            if len(parts) >= 2 and parts[-1] in MODULE_MUTATORS and root is not None:
                self.flag(node, f"calls {dotted}() on {'.'.join(parts[:-1])}")
            if parts[-1] in ("register", "unregister") and "events" in parts:
                self.flag(node, f"registers an IPython event callback ({dotted})")
            if parts[-1] in ("set_custom_exc", "register_magic_function", "set_hook"):
                self.flag(node, f"calls {dotted}()")
            if parts[-1] == "run_line_magic" and node.args and isinstance(
                    node.args[0], ast.Constant) and node.args[0].value in (
                    "load_ext", "run", "config", "load", "xmode", "autoawait", "alias_magic"):
                self.flag(node, f"uses the %{node.args[0].value} magic")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in FRAME_ATTRS:
            self.flag(node, f"uses {node.attr} (reaches into other code's frames or objects)")
        elif node.attr in IPYTHON_ATTRS and isinstance(node.ctx, ast.Load):
            self.flag(node, f"touches the IPython internals ({node.attr})")
        elif node.attr in SYS_SENSITIVE and self.root_module(_chain(node.value)) == "sys" \
                and node.attr in ("modules", "meta_path", "path_hooks", "settrace",
                                  "setprofile", "addaudithook") and isinstance(node.ctx, ast.Load):
            self.sys_reads.append(node)
        self.generic_visit(node)


def _to_python(source: str) -> str:
    """IPython syntax (magics, !shell) -> plain Python, as the kernel would run it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - fall back to the raw text
        return source


def scan_source(source: str, aliases: dict[str, str] | None = None) -> list[str]:
    """Reasons this cell's code looks like tampering (see the module docstring)."""
    code = _to_python(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []  # it will fail when run; nothing it does can take effect
    scanner = _Scanner(aliases or {})
    scanner.visit(tree)
    for node in scanner.sys_reads:  # sys.modules / meta_path touched other than `in` tests
        if not _only_membership_test(node, tree):
            scanner.flag(node, f"uses sys.{node.attr}")
    return list(dict.fromkeys(scanner.reasons))


def _only_membership_test(node: ast.Attribute, tree: ast.AST) -> bool:
    for parent in ast.walk(tree):
        if isinstance(parent, ast.Compare) and any(c is node for c in parent.comparators):
            return all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops)
    return False


def _aliases_from(sources: Iterable[str]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(_to_python(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = (
                        a.name if a.asname else a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def scan_notebook(nb, trusted_sources: Iterable[str] = (),
                  restored_ids: Iterable[str] = ()) -> list[str]:
    """Scan every code cell the student wrote or could have changed.

    `trusted_sources`: sources of the released notebook's cells that are not answers (imports,
    data loading, tests); a cell identical to one of them is skipped, but its imports still
    define aliases (`import numpy as np` given by the course). `restored_ids`: grade_ids of the
    test and read-only cells, which nbgrader restores from the source before running (edits to
    them never run).
    """
    trusted = {s.strip() for s in trusted_sources}
    restored = set(restored_ids)
    aliases = _aliases_from(trusted)
    reasons = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or cell.get("source", "").strip() in trusted:
            continue
        if cell_roles.grade_id(cell) in restored and not cell_roles.is_solution(cell):
            continue
        label = cell_roles.grade_id(cell) or f"cell {index + 1}"
        for reason in scan_source(cell.get("source", ""), aliases):
            reasons.append(f"{label}: {reason}")
    return reasons


def trusted_cells(released_notebook) -> tuple[list[str], list[str]]:
    """(sources, grade_ids) of a released notebook's cells that are not answers."""
    sources, ids = [], []
    for cell in released_notebook.cells:
        if cell.get("cell_type") == "code" and not cell_roles.is_solution(cell):
            sources.append(cell.get("source", ""))
            if cell_roles.grade_id(cell):
                ids.append(cell_roles.grade_id(cell))
    return sources, ids


def submission_reasons(submitted, released, run_report: dict | None) -> list[str]:
    """Every reason to suspect tampering: the static scan of the submitted notebook (cells that
    differ from the release) and the kernel's runtime report recorded by the sandbox."""
    sources, ids = trusted_cells(released)
    reasons = scan_notebook(submitted, sources, ids)
    runtime = (run_report or {}).get("tamper_runtime") or []
    reasons += [f"at run time: {r}" for r in runtime]
    return reasons
