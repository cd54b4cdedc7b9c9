"""Code the book displays fits an 80-column code block, so no chapter makes its reader
scroll sideways: the library code it includes (``literalinclude`` or, in the self-study
edition, ``graded-source`` with ``:pyobject:``) and the chapters' own code cells.
No book build needed."""

import ast
import re
from pathlib import Path

import pytest
from conftest import REPO as ROOT

WIDTH = 80
# A MyST code cell: its fence line, then options and code up to the closing fence.
CODE_CELL = re.compile(r"^```\{code-cell\}.*\n((?:.*\n)*?)```\s*$", re.MULTILINE)
INCLUDE = re.compile(r"```\{(?:literalinclude|graded-source)\}\s+(\S+)\n((?::[\w-]+:.*\n)*)")


def displayed_objects() -> list[tuple[str, Path, str]]:
    """(chapter, source file, object) for every ``:pyobject:`` include in book/."""
    found = []
    for chapter in sorted((ROOT / "book").glob("*.md")):
        for match in INCLUDE.finditer(chapter.read_text(encoding="utf-8")):
            options = dict(re.findall(r":([\w-]+):\s*(.*)", match.group(2)))
            if "pyobject" in options:
                source = (chapter.parent / match.group(1)).resolve()
                found.append((chapter.name, source, options["pyobject"].strip()))
    return found


def object_lines(source: Path, dotted: str) -> list[tuple[int, str]]:
    """(line number, text) of the object's source, decorators included, as Sphinx shows it."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    body: list[ast.stmt] = tree.body
    node = None
    for part in dotted.split("."):
        node = next((n for n in body if getattr(n, "name", None) == part), None)
        if node is None:
            raise LookupError(f"{source.name} has no {dotted}")
        body = getattr(node, "body", [])
    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
    lines = source.read_text(encoding="utf-8").splitlines()
    return [(i, lines[i - 1]) for i in range(start, node.end_lineno + 1)]


OBJECTS = displayed_objects()


def test_the_book_displays_library_code():
    assert len(OBJECTS) >= 20  # the pattern still finds the includes


@pytest.mark.parametrize("chapter, source, name", OBJECTS,
                         ids=[f"{c}:{s.name}:{n}" for c, s, n in OBJECTS])  # fmt: skip
def test_displayed_code_fits_80_columns(chapter, source, name):
    long = [f"{source.name}:{i} ({len(text)} chars)"
            for i, text in object_lines(source, name) if len(text) > WIDTH]  # fmt: skip
    assert long == [], f"{chapter} shows {name} with lines over {WIDTH} characters"


def code_cell_lines(chapter: Path) -> list[tuple[int, str]]:
    """(line number in the chapter, text) of every line inside its code cells."""
    text = chapter.read_text(encoding="utf-8")
    found = []
    for match in CODE_CELL.finditer(text):
        first = text.count("\n", 0, match.start(1)) + 1  # line number of the cell's first line
        found += [(first + i, line) for i, line in enumerate(match.group(1).splitlines())]
    return found


CHAPTERS = sorted(path for path in (ROOT / "book").glob("*.md") if code_cell_lines(path))


def test_the_book_has_code_cells():
    assert len(CHAPTERS) >= 8  # the pattern still finds the chapters' cells


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_code_cells_fit_80_columns(chapter):
    long = [f"{chapter.name}:{i} ({len(text)} chars)"
            for i, text in code_cell_lines(chapter) if len(text) > WIDTH]  # fmt: skip
    assert long == [], f"code cells with lines over {WIDTH} characters: {long}"
