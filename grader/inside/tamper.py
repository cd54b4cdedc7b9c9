"""Tamper detection inside the kernel: answer code must implement, not rebind what tests use.

``runtime_report`` runs inside the graded kernel after the notebook (the sandbox asks for it,
and a hidden test may call ``assert_untampered``). ``start_kernel`` records the untouched
objects before any student code runs; the report compares them by identity with what is there
now. This module is what the kernel imports (keep it free of heavy imports); the static scan of
the same cells, run by the grader outside the kernel, is grader.integrity.tamper_scan, and the flag
they lead to is decided in grader.records.flags.
"""

from __future__ import annotations

import builtins
import json
import sys

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
    if name == "torch":
        _install_instruments()


def start_kernel() -> None:
    """Entry point of a graded kernel: snapshot the interpreter, watch for torch/numpy imports,
    then run ipykernel (the command line is ipykernel's: -f CONNECTION_FILE ...)."""
    import grader

    grader.restore_imports()  # before the snapshot: the kernel's imports as a student's own
    sys.meta_path.insert(0, _BaselineOnImport())
    snapshot()
    sys.argv.append("--IPKernelApp.exec_lines="
                    "__import__('grader.inside.tamper', fromlist=['x']).snapshot_shell()")
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def _install_instruments() -> None:
    """grader.inside.instruments, the moment torch has loaded (before the importing cell goes on):
    after the notebook this kernel serves the trusted verdict
    (grader.isolation.sandbox.SandboxedExecute. serve_verdict, grader/inside/subject.py's Server),
    whose instruments record the untouched torch when they are imported, and the machine as torch
    reports it now (BOOT_MACHINE). Not at the kernel's start: a notebook that never imports torch
    does not pay for it (nor carry it under its memory limit). A kernel where torch loaded without
    this hook serves no verdict (the grader starts a fresh subject)."""
    try:
        from grader.inside import instruments
    except Exception:  # noqa: BLE001 - never break the notebook's import
        return
    instruments.BOOT_MACHINE = instruments.machine()
    sys.modules["grader_instruments"] = instruments


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
