"""Hidden tests stay with the grader: a graded kernel runs test cells without them.

nbgrader's autograde restores each test cell from the gradebook, hidden tests included, and its
feedback shows the executed notebook: a kernel that ran them would show their source, and the
tracebacks of the grader's checks, to the student. ``HideHiddenTests`` runs before the kernel
(first of the autograde steps: grader.bridge.nbgrader_steps.configure_execution) and replaces
every hidden-test region of a test cell by one comment line (HIDDEN_NOTE); the visible asserts
still run there, as in the student's own Jupyter. The cell's score is the trusted verdict's
(grader.judging.verdict), which runs the whole cell, hidden tests included, in the grader's
process.

``split_hidden`` cuts a cell into its visible and hidden parts, in order, for both sides: the
kernel gets the visible parts, the verdict runs every part and knows which part failed.
"""

from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests

from grader.bridge import cell_roles

# what a kernel runs (and the student's page shows) where a cell's hidden tests were
HIDDEN_NOTE = "# (hidden tests here: the grader runs them on your code and scores this cell)"
BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


def split_hidden(source: str, begin: str = BEGIN, end: str = END) -> list[tuple[bool, str]]:
    """[(hidden, text), ...]: the cell's lines in order, in runs of visible and hidden code.
    The marker lines belong to no part, nor do blank visible runs; a region left open runs to
    the end of the cell (nbgrader's release refuses one; the kernel must not see it either
    way)."""
    parts: list[tuple[bool, list[str]]] = []
    hidden = False
    for line in source.split("\n"):
        if begin in line:
            hidden = True
            parts.append((True, []))
            continue
        if end in line and hidden:
            hidden = False
            parts.append((False, []))
            continue
        if not parts or parts[-1][0] != hidden:
            parts.append((hidden, []))
        parts[-1][1].append(line)
    # a visible run of blank lines is no part (nothing there can fail)
    return [(h, "\n".join(lines)) for h, lines in parts if h or "".join(lines).strip()]


def visible_source(source: str, begin: str = BEGIN, end: str = END) -> str:
    """The cell as a kernel runs it: each hidden region replaced by HIDDEN_NOTE, indented as
    its marker line was (so a region inside a block still leaves valid code)."""
    out: list[str] = []
    hidden = False
    for line in source.split("\n"):
        if begin in line:
            if not hidden:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(indent + HIDDEN_NOTE)
                if indent:
                    out.append(indent + "pass")
            hidden = True
        elif end in line and hidden:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


class HideHiddenTests(ClearHiddenTests):
    """nbgrader step before the kernel runs: the hidden tests of every test (grade) cell become
    HIDDEN_NOTE. Answer cells are the student's and stay as written (a marker there is text).
    Uses ClearHiddenTests's configurable delimiters."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict):
        for index, cell in enumerate(nb.cells):
            nb.cells[index], resources = self.preprocess_cell(cell, resources, index)
        return nb, resources

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, index: int):
        if cell.cell_type == "code" and cell_roles.is_grade(cell) and self.begin_test_delimeter in \
                cell.source:
            cell.source = visible_source(cell.source, self.begin_test_delimeter,
                                         self.end_test_delimeter)
        return cell, resources
