"""Find implementations of graded objects in a tree of files (publish's check of its outputs).

The graded objects are grader.integrity.graded's: every top-level `def`/`class` of an answer cell of
solutions/ (the exercise contract of DESIGN.md and the later tasks of the instructor guide) and
the course library's objects that implement the same contracts. A file *holds an answer* when
one of its code units

- defines (`def`/`class`, at any depth) a graded name with a body that is more than a stub
  (docstring, `raise NotImplementedError`, `pass`, `...`): the released exercises keep their
  stubs' `def`/`class` lines on purpose, nothing more; or
- shows a graded definition's implementation under any name (grader.integrity.graded.shows: a shared
  run of normalised tokens, so a renamed or reformatted copy is found too).

Code units: a `.py` file; each code cell and text output of a notebook; each `<pre>` block of an
HTML page; each fenced block of a Markdown/text file (the site's `_sources/`).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from grader.integrity.graded import Definition, normalised_tokens, shows

FENCE = re.compile(r"^(```+|~~~+)[^\n]*\n(.*?)^\1", re.M | re.S)


@dataclass(frozen=True)
class Answer:
    file: str
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}: {self.why} {self.name}"


def find_answers(tree: Path, definitions: list[Definition]) -> list[Answer]:
    """Every code unit of every file under `tree` that holds one of `definitions`."""
    names = {d.name for d in definitions}
    found: list[Answer] = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(tree).as_posix()
        seen: set[tuple[str, str]] = set()
        for code in code_units(path):
            for name in defined_with_body(code, names):
                seen.add((name, "defines"))
            tokens = normalised_tokens(code)
            for definition in definitions:
                if shows(definition.tokens, tokens):
                    seen.add((definition.name, "shows the implementation of"))
        found += [Answer(rel, name, why) for name, why in sorted(seen)]
    return found


def code_units(path: Path) -> Iterator[str]:
    """The pieces of `path` that may hold code (nothing for binary or other files)."""
    suffix = path.suffix.lower()
    if suffix not in {".py", ".ipynb", ".html", ".htm", ".md", ".txt", ".rst"}:
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    if suffix == ".py":
        yield text
    elif suffix == ".ipynb":
        yield from _notebook_units(text)
    elif suffix in {".html", ".htm"}:
        parser = _PreBlocks()
        parser.feed(text)
        yield from parser.blocks
    else:  # Markdown / text: fenced blocks; a .txt of Python (`_sources/x.py.txt`) whole
        blocks = [m.group(2) for m in FENCE.finditer(text)]
        yield from blocks or [text]


def _notebook_units(text: str) -> Iterator[str]:
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError:
        yield text
        return
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        yield "".join(source) if isinstance(source, list) else str(source)
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {}).get("text/plain", output.get("text", ""))
            yield "".join(data) if isinstance(data, list) else str(data)


def defined_with_body(code: str, names: set[str]) -> set[str]:
    """Graded names that `code` defines with more than a stub body (unparsable code: none;
    the token comparison still sees it)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in ast.walk(tree)
            if isinstance(node, kinds) and node.name in names and not _is_stub(node)}


def _is_stub(node: ast.AST) -> bool:
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # docstring
    for stmt in body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and stmt.value.value is Ellipsis:
            continue
        if isinstance(stmt, ast.Raise) and _names_not_implemented(stmt.exc):
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_stub(stmt):
            continue  # a class stub's method stubs
        return False
    return True


def _names_not_implemented(exc: ast.expr | None) -> bool:
    if isinstance(exc, ast.Call):
        exc = exc.func
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


class _PreBlocks(HTMLParser):
    """Text of every <pre> of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            self._depth += 1

    def handle_endtag(self, tag):
        if tag == "pre" and self._depth:
            self._depth -= 1
            if not self._depth:
                self.blocks.append("".join(self._text))
                self._text = []

    def handle_data(self, data):
        if self._depth:
            self._text.append(data)
