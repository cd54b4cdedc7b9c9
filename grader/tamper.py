"""Tamper detection: answer code must implement, not rebind what the tests rely on.

Two independent checks, each returning human-readable reasons (empty list: nothing suspicious):

* ``scan_source`` / ``scan_notebook`` — a static AST scan of the student's code, run by the
  grader outside the kernel (nothing the notebook does can hide from it). It looks for rebinding
  of torch/numpy/builtins attributes, ``torch.Tensor`` methods, ``sys.modules`` edits, IPython
  hooks (events, input/AST transformers, custom exception handlers), frame and tracing tricks,
  dynamic code, comparison-rigging dunders, and imports of ``resnet_course`` / ``grader``.
* ``runtime_report`` — run inside the kernel after the notebook (the sandbox asks for it, and a
  hidden test may call ``assert_untampered``). ``start_kernel`` records the untouched objects
  before any student code runs; the report compares them by identity with what is there now.
"""

from __future__ import annotations

import ast
import builtins
import json
import sys
from collections.abc import Iterable

# ----------------------------------------------------------------------------- what is watched

WATCHED_ATTRS = {
    "torch": ["allclose", "equal", "isclose", "eq", "ne", "lt", "gt", "le", "ge", "all", "any",
              "abs", "sum", "max", "min", "mean", "is_tensor", "manual_seed", "no_grad", "Tensor",
              "tensor", "randn", "rand", "zeros", "ones", "float32", "testing", "nn"],
    "torch.testing": ["assert_close"],
    "torch.nn": ["Module", "Linear", "Conv2d", "BatchNorm2d", "ReLU", "Sequential", "functional",
                 "Parameter"],
    "torch.nn.functional": ["relu", "cross_entropy", "linear", "conv2d"],
    "numpy": ["allclose", "array_equal", "isclose", "all", "any", "abs", "asarray", "testing",
              "ndarray"],
    "numpy.testing": ["assert_allclose", "assert_array_equal", "assert_equal"],
}
SYS_HOOKS = ["excepthook", "displayhook", "breakpointhook", "unraisablehook"]
SHELL_HOOKS = ["run_cell", "run_cell_async", "run_code", "run_ast_nodes", "showtraceback",
               "_showtraceback", "showsyntaxerror", "transform_cell", "transform_ast",
               "should_run_async", "get_exception_only", "CustomTB"]
KERNEL_HOOKS = ["do_execute", "execute_request", "send_response", "_publish_execute_input"]
SENSITIVE_BUILTINS = {"isinstance", "issubclass", "len", "abs", "all", "any", "float", "int",
                      "round", "getattr", "hasattr", "callable", "__import__", "__build_class__",
                      "AssertionError", "Exception", "BaseException", "print", "type", "id",
                      "super", "object", "bool", "str", "repr", "list", "tuple", "dict", "set"}
PROTECTED_MODULES = ("torch", "numpy", "builtins", "grader", "sys", "IPython", "ipykernel")

# Swapped by IPython/ipykernel around every execution; compared by where their code lives.
VOLATILE = {"builtins.input", "builtins.raw_input", "builtins.exit", "builtins.quit",
            "builtins.get_ipython", "builtins.display", "sys.excepthook", "sys.displayhook"}

_BASELINE: dict | None = None  # filled by start_kernel before any student code runs


# ----------------------------------------------------------------------------- runtime side


def _resolve(dotted: str):
    return sys.modules.get(dotted)


def _watch_items() -> dict[str, object]:
    """name -> object for everything compared by identity (only modules already imported)."""
    items: dict[str, object] = {}
    for modname, attrs in WATCHED_ATTRS.items():
        module = _resolve(modname)
        if module is None:
            continue
        items[f"sys.modules[{modname!r}]"] = module
        namespace = vars(module)  # not getattr: numpy's lazy __getattr__ would import here
        for attr in attrs:
            if attr in namespace:
                items[f"{modname}.{attr}"] = namespace[attr]
    torch = _resolve("torch")
    nn = _resolve("torch.nn")
    classes = [] if torch is None else [vars(torch).get("Tensor"),
                                        None if nn is None else vars(nn).get("Module")]
    for cls in classes:
        if isinstance(cls, type):
            for key, value in list(vars(cls).items()):
                items[f"{cls.__module__}.{cls.__qualname__}.{key}"] = value
    for key, value in vars(builtins).items():
        if not key.startswith("_") or key in ("__import__", "__build_class__"):
            items[f"builtins.{key}"] = value
    for hook in SYS_HOOKS:
        items[f"sys.{hook}"] = getattr(sys, hook, None)
    items["sys.gettrace()"] = sys.gettrace()
    items["sys.getprofile()"] = sys.getprofile()
    items["sys.meta_path"] = tuple(sys.meta_path)
    items["sys.path_hooks"] = tuple(sys.path_hooks)
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("grader",):
            items[f"sys.modules[{name!r}]"] = module
    items.update(_shell_items())
    return items


def _shell_items() -> dict[str, object]:
    """IPython state that decides how later cells run and how their errors are reported."""
    shell = _shell()
    if shell is None:
        return {}
    items: dict[str, object] = {
        "shell.input_transformers_cleanup": tuple(shell.input_transformers_cleanup),
        "shell.input_transformers_post": tuple(shell.input_transformers_post),
        "shell.ast_transformers": tuple(shell.ast_transformers),
        "shell.custom_exceptions": tuple(shell.custom_exceptions),
        "shell.user_ns['__builtins__']": shell.user_ns.get("__builtins__"),
        "shell.display_formatter": shell.display_formatter,
        "shell.displayhook": shell.displayhook,
        "shell.compile": shell.compile,
    }
    for event, callbacks in shell.events.callbacks.items():
        items[f"shell.events[{event!r}]"] = tuple(callbacks)
    for owner, names in ((shell, SHELL_HOOKS), (getattr(shell, "kernel", None), KERNEL_HOOKS)):
        if owner is None:
            continue
        for name in names:
            items[f"{type(owner).__name__}.{name}"] = getattr(type(owner), name, None)
            items[f"{type(owner).__name__}.__dict__[{name!r}]"] = vars(owner).get(name)
    tm = getattr(shell, "input_transformer_manager", None)
    if tm is not None:
        items["shell.input_transformer_manager"] = tm
        for attr in ("cleanup_transforms", "line_transforms", "token_transformers"):
            items[f"input_transformer_manager.{attr}"] = tuple(getattr(tm, attr, ()))
    return items


def _shell():
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return None


def snapshot() -> None:
    """Record the untouched interpreter (called before any student code)."""
    global _BASELINE
    _BASELINE = _watch_items()


def snapshot_shell() -> None:
    """Add the IPython shell's state once the shell exists (run as a kernel exec_line)."""
    global _BASELINE
    if _BASELINE is None:
        _BASELINE = {}
    _BASELINE.update(_watch_items())


class _BaselineOnImport:
    """Meta-path hook: when torch or numpy is first imported, add its untouched objects to the
    baseline the moment the import finishes (before the importing cell can change them), so a
    kernel does not pay for importing torch when the notebook never uses it."""

    WATCHED = ("torch", "numpy")

    def find_spec(self, name, path=None, target=None):
        if name not in self.WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _extend_baseline(name)

        loader.exec_module = exec_module
        return spec


def _extend_baseline(name: str) -> None:
    """Record the objects of `name` (only those: another package may be half-imported now)."""
    if _BASELINE is None:
        return
    try:
        items = _watch_items()
    except Exception:  # noqa: BLE001 - never break the notebook's import
        return
    for key, value in items.items():
        if key.startswith((f"{name}.", f"sys.modules[{name!r}", f"sys.modules['{name}.")):
            _BASELINE.setdefault(key, value)  # what was recorded earlier stays the reference


def start_kernel() -> None:
    """Entry point of a graded kernel: snapshot the interpreter, watch for torch/numpy imports,
    then run ipykernel (the command line is ipykernel's: -f CONNECTION_FILE ...)."""
    sys.meta_path.insert(0, _BaselineOnImport())
    snapshot()
    sys.argv.append("--IPKernelApp.exec_lines="
                    "__import__('grader.tamper', fromlist=['x']).snapshot_shell()")
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def runtime_report() -> list[str]:
    """Reasons the interpreter looks tampered with; [] when it matches the baseline."""
    try:
        return _runtime_report()
    except Exception as e:  # noqa: BLE001 - only a changed interpreter breaks the check itself
        return [f"the integrity check itself failed ({_ORIGINAL_TYPE(e).__name__}: {e})"]


# Originals captured when this module is imported (before any student code in a graded kernel),
# so the comparison below still works when the notebook rebound the builtins.
_ORIGINAL_TYPE, _ORIGINAL_LEN, _ORIGINAL_ZIP = type, len, zip


def _runtime_report() -> list[str]:
    reasons = []
    now = _watch_items()
    if _BASELINE is None:
        return _fingerprint_report(now)
    for key, before in _BASELINE.items():
        if key not in now:
            if key in VOLATILE:
                continue
            if not key.startswith("builtins."):
                reasons.append(f"{key} was removed")
            else:
                reasons.append(f"builtin {key[9:]} was deleted")
        elif key in VOLATILE:  # IPython swaps these per execution: judge the code behind them
            if _student_made(now[key]):
                reasons.append(f"{key} was replaced by code from the notebook")
        elif now[key] is not before and not _same_value(before, now[key]):
            reasons.append(f"{key} was replaced")
    for key in now.keys() - _BASELINE.keys():
        if key.startswith(("torch.Tensor.", "torch.nn.modules.module.Module.")):
            reasons.append(f"{key} was added")
        if key.startswith("sys.modules['grader") and not _genuine_grader_module(now[key]):
            reasons.append(f"{key} is not the grader's own module")
    reasons += _shadowed_names()
    return sorted(set(reasons))


def _student_made(obj: object) -> bool:
    """True for a function (or bound method) whose code is not installed code: defined in a
    notebook cell, by exec(), or anywhere outside the Python install and the venv."""
    func = getattr(obj, "__func__", obj)
    code = getattr(func, "__code__", None)
    if code is None:
        return False  # C functions and objects without Python code come from installed code
    from pathlib import Path

    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    try:
        import grader

        roots.add(Path(grader.__file__).resolve().parent)
    except ImportError:  # pragma: no cover
        pass
    filename = code.co_filename
    if filename.startswith("<"):
        return True
    path = Path(filename).resolve()
    return not any(path.is_relative_to(root) for root in roots)


def _same_value(a: object, b: object) -> bool:
    """Tuples of hooks are rebuilt on each call: equal contents by identity count as the same."""
    if _ORIGINAL_TYPE(a) is tuple and _ORIGINAL_TYPE(b) is tuple:
        return _ORIGINAL_LEN(a) == _ORIGINAL_LEN(b) and not [
            x for x, y in _ORIGINAL_ZIP(a, b, strict=True) if x is not y]
    # torch wraps some of its own functions on first use (creating an optimizer imports
    # torch._dynamo, which wraps torch.manual_seed): installed code wrapping the original is fine.
    if getattr(b, "__wrapped__", None) is a and not _student_made(b):
        return True
    return False


def _genuine_grader_module(module: object) -> bool:
    from pathlib import Path

    import grader

    origin = getattr(module, "__file__", None)
    root = Path(grader.__file__).resolve().parent
    return origin is not None and Path(origin).resolve().is_relative_to(root)


def _shadowed_names() -> list[str]:
    """Names a test cell uses that the notebook rebound in its own namespace."""
    shell = _shell()
    if shell is None:
        return []
    reasons = []
    for name in SENSITIVE_BUILTINS:
        if name in shell.user_ns and shell.user_ns[name] is not getattr(builtins, name, None):
            reasons.append(f"the builtin {name} is shadowed in the notebook's namespace")
    for alias, modname in (("torch", "torch"), ("np", "numpy"), ("numpy", "numpy"),
                           ("nn", "torch.nn"), ("F", "torch.nn.functional")):
        value = shell.user_ns.get(alias)
        if value is not None and modname in sys.modules and value is not sys.modules[modname]:
            if not (alias == "F" and not hasattr(value, "__name__")):
                reasons.append(f"the name {alias} no longer refers to the module {modname}")
    return reasons


def _fingerprint_report(now: dict[str, object]) -> list[str]:
    """Without a baseline (kernel not started by start_kernel): functions of torch/numpy must be
    defined in those packages, builtins must be builtins."""
    reasons = []
    for key, value in now.items():
        if key.startswith("builtins.") and key[9:] in SENSITIVE_BUILTINS:
            module = getattr(value, "__module__", None)
            if module != "builtins" or getattr(value, "__name__", key[9:]) != key[9:]:
                reasons.append(f"{key} is not the original builtin")
        elif key.startswith(("torch.", "numpy.")):
            code = getattr(value, "__code__", None)
            if code is not None and not _in_package(code.co_filename, key.split(".")[0]):
                reasons.append(f"{key} is defined in {code.co_filename}, not in the library")
    return reasons + _shadowed_names()


def _in_package(filename: str, package: str) -> bool:
    from pathlib import Path

    module = sys.modules.get(package)
    if module is None or not getattr(module, "__file__", None):
        return False
    return Path(filename).resolve().is_relative_to(Path(module.__file__).resolve().parent)


LAST_REPORT = ""  # JSON list of reasons, set by record_report


def record_report() -> None:
    """Compute the report inside a cell run and keep it (JSON) for the grader to read."""
    global LAST_REPORT
    LAST_REPORT = json.dumps(runtime_report())


def assert_untampered() -> None:
    """For hidden tests: fail with the reasons when the kernel was tampered with."""
    reasons = runtime_report()
    if reasons:
        raise AssertionError("tamper-suspected: " + "; ".join(reasons))


# ----------------------------------------------------------------------------- static side

ALLOWED_LIBRARY_IMPORTS = ("resnet_course.data", "resnet_course.plotting")
FORBIDDEN_IMPORTS = ("resnet_course", "grader")
ROOT_MODULES = {"torch", "numpy", "builtins", "sys", "IPython", "ipykernel", "grader",
                "resnet_course", "importlib", "math", "nbgrader", "unittest"}
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
        top = module.split(".")[0]
        if top in FORBIDDEN_IMPORTS and not module.startswith(ALLOWED_LIBRARY_IMPORTS):
            self.flag(node, f"imports {module} instead of implementing it")
        if top == "ctypes":
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
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") in restored and not meta.get("solution"):
            continue
        label = meta.get("grade_id") or f"cell {index + 1}"
        for reason in scan_source(cell.get("source", ""), aliases):
            reasons.append(f"{label}: {reason}")
    return reasons


# ----------------------------------------------------------------------------- grader side

TAMPER_FLAG = "tamper-suspected"


def trusted_cells(released_notebook) -> tuple[list[str], list[str]]:
    """(sources, grade_ids) of a released notebook's cells that are not answers."""
    sources, ids = [], []
    for cell in released_notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and not meta.get("solution"):
            sources.append(cell.get("source", ""))
            if meta.get("grade_id"):
                ids.append(meta["grade_id"])
    return sources, ids


def submission_reasons(submitted, released, run_report: dict | None) -> list[str]:
    """Every reason to suspect tampering: the static scan of the submitted notebook (cells that
    differ from the release) and the kernel's runtime report recorded by the sandbox."""
    sources, ids = trusted_cells(released)
    reasons = scan_notebook(submitted, sources, ids)
    runtime = (run_report or {}).get("tamper_runtime") or []
    reasons += [f"at run time: {r}" for r in runtime]
    return reasons


def tamper_flags(ctx) -> list[str]:
    """Flag check for grader.flags (ctx: grader.flags.SubmissionContext). Writes the reasons to
    DIR/review/<student>/<assignment>.txt for the instructor."""
    import nbformat

    released_path = ctx.course_root / "release" / ctx.assignment_id / ctx.source_notebook.name
    try:
        submitted = nbformat.read(ctx.submitted_notebook, as_version=4)
        released = nbformat.read(released_path, as_version=4)
    except Exception:  # noqa: BLE001 - unreadable notebooks are flagged by other checks
        return []
    report = {}
    if ctx.autograded_notebook.exists():
        try:
            report = nbformat.read(ctx.autograded_notebook, as_version=4).metadata.get(
                "grader_run", {})
        except Exception:  # noqa: BLE001
            report = {}
    reasons = submission_reasons(submitted, released, report)
    path = review_path(ctx.course_root, ctx.student_id, ctx.assignment_id)
    if not reasons:
        path.unlink(missing_ok=True)
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(reasons) + "\n", encoding="utf-8")
    return [TAMPER_FLAG]


def review_path(course_root, student_id: str, assignment_id: str):
    from pathlib import Path

    return Path(course_root) / "review" / student_id / f"{assignment_id}.txt"


def zero_autograded(db_url: str, student_id: str, assignment_id: str) -> None:
    """No points from the autograded cells (manual grades, which a person gives after reading
    the code, are kept). Used where no trusted verdict could be reached (grader.verdict)."""
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with Gradebook(db_url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's autoflush noise; rows are right
        submission = gb.find_submission(assignment_id, student_id)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.auto_score is not None:
                    grade.auto_score = 0.0
        gb.db.commit()


def write_review_list(course_root, rows: list[tuple[str, str, str]]) -> None:
    """DIR/review.csv: student_id, assignment, flags of every flagged submission, with the file
    that explains a tamper flag."""
    import csv
    from pathlib import Path

    path = Path(course_root) / "review.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "assignment", "flags", "details"])
        for student_id, assignment_id, flags in sorted(rows):
            details = review_path(course_root, student_id, assignment_id)
            writer.writerow([student_id, assignment_id, flags,
                             str(details.relative_to(course_root)) if details.exists() else ""])
