"""The pinned package sets of the published trees, cut from the repository's requirements.txt.

requirements.txt pins everything the instructors need (the book build, nbgrader, pytest, ...).
A student running the exercises needs far less: the packages their notebooks import, JupyterLab,
and what those depend on. `pinned_closure` walks the installed packages' metadata (this
interpreter's, which `make venv` installed from requirements.txt) from a set of root distributions
and returns their pins from requirements.txt, so every published pin is one the course tests.
`imported_distributions` finds the roots: the distributions that some code imports.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name


def read_pins(requirements: Path) -> dict[str, str]:
    """canonical name -> the requirement line (`torch==2.13.0`) of a pinned requirements file."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        pins[canonicalize_name(Requirement(line).name)] = line
    return pins


def imported_modules(sources: Iterable[str]) -> set[str]:
    """Top-level module names imported by any of the Python `sources` (cells that do not parse,
    e.g. IPython magics, are read line by line)."""
    modules: set[str] = set()
    for source in sources:
        try:
            nodes = ast.walk(ast.parse(source))
        except SyntaxError:
            nodes = (node for line in source.splitlines() for node in _parse_line(line))
        for node in nodes:
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def _parse_line(line: str) -> list[ast.AST]:
    try:
        return list(ast.walk(ast.parse(line.strip())))
    except SyntaxError:
        return []


@functools.cache
def packages_distributions() -> dict[str, list[str]]:
    """importlib.metadata's module -> distributions map, once per process (it reads the record
    of every installed package: seconds)."""
    return metadata.packages_distributions()


def imported_distributions(sources: Iterable[str], local: Iterable[str] = ()) -> set[str]:
    """Canonical names of the installed distributions that `sources` import; the standard
    library and the `local` modules (the course library) are left out. LookupError for a module
    that is neither (the published environment could not run that code)."""
    provided = packages_distributions()
    wanted = set()
    for module in sorted(imported_modules(sources) - set(sys.stdlib_module_names) - set(local)):
        if module not in provided:
            raise LookupError(f"imported module {module!r} comes from no installed package")
        wanted |= {canonicalize_name(name) for name in provided[module]}
    return wanted


def pinned_closure(requirements: Path, roots: Iterable[str]) -> list[str]:
    """The pins (from `requirements`) of `roots` and everything they depend on, sorted.
    LookupError when a root or a dependency that applies here is not pinned there."""
    pins = read_pins(requirements)
    environment = default_environment()
    todo = [canonicalize_name(r) for r in roots]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            raise LookupError(f"{name} is needed but not pinned in {requirements}")
        for line in metadata.requires(name) or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if marker is None or marker.evaluate({**environment, "extra": ""}):
                dep = canonicalize_name(requirement.name)
                if dep in pins:  # platform wheels pip resolves itself (not in the freeze)
                    todo.append(dep)
    return sorted((pins[name] for name in seen), key=lambda s: re.sub(r"[-_.]", "-", s.lower()))
