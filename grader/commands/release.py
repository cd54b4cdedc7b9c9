"""`python -m grader release`: solutions/ -> exercises/ with nbgrader, then a leak check.

nbgrader's generate_assignment runs in a throw-away course directory (source/ = a copy of
solutions/<id>/). The student version is normalized (no outputs, stable JSON) so the same source
always gives byte-identical files, checked for leaks, and only then copied into exercises/<id>/.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearSolutions
from nbgrader.utils import capture_log

from grader.bridge import cell_roles
from grader.bridge.course import (
    CourseLayout,
    Roots,
    put_venv_on_path,
    replace_tree,
    sqlite_url,
    write_normalized,
)
from grader.bridge.nbgrader_config import build_config

# Text that marks instructor-only regions; none of it may appear in a student version.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")
REGIONS = {"### BEGIN SOLUTION": "### END SOLUTION",
           "### BEGIN HIDDEN TESTS": "### END HIDDEN TESTS",
           "### BEGIN MARK SCHEME": "### END MARK SCHEME"}


class ReleaseError(RuntimeError):
    """nbgrader failed, or the student version would leak instructor-only text."""


@dataclass
class Leak:
    file: str
    line: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}: {self.why}: {self.line!r}"


def generate_release(roots: Roots, assignment_id: str, out_dir: Path) -> Path:
    """Run generate_assignment for one assignment; write the normalized result to out_dir/<id>/."""
    put_venv_on_path()
    with tempfile.TemporaryDirectory(prefix="grader-release-") as tmp:
        course = Path(tmp)
        layout = CourseLayout(course)
        replace_tree(roots.solutions / assignment_id, layout.source(assignment_id))
        for path in layout.source(assignment_id).rglob("*.ipynb"):
            _give_cells_stable_ids(path)
        config = build_config(course, db_url=sqlite_url(course))
        # no gradebook needed to make the student version (saves starting `alembic`)
        config.SaveCells.enabled = False
        config.GenerateAssignment.no_database = True
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = assignment_id
        app = GenerateAssignment(coursedir=coursedir, config=config)
        app.force = True
        app.log.setLevel(logging.INFO)
        result = capture_log(app)
        released = layout.released(assignment_id)
        if not result["success"] or not (released / f"{assignment_id}.ipynb").is_file():
            raise ReleaseError(f"nbgrader generate_assignment failed for {assignment_id}:\n"
                               f"{result.get('log', '')}{result.get('error', '')}")
        for path in released.rglob("*.ipynb"):
            write_normalized(nbformat.read(path, as_version=4), path)
        dest = out_dir / assignment_id
        replace_tree(released, dest)
    return dest


def _give_cells_stable_ids(path: Path) -> None:
    """nbformat >= 4.5 invents a random id for a cell without one; fix them from the position
    (in the temporary copy only) so the release stays byte-identical from run to run."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    if nb.get("nbformat_minor", 0) < 5 or all("id" in cell for cell in cells):
        return
    taken = {cell["id"] for cell in cells if "id" in cell}
    for index, cell in enumerate(cells):
        if "id" not in cell:
            new_id = f"cell-{index}"
            while new_id in taken:
                new_id += "x"
            cell["id"] = new_id
            taken.add(new_id)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _region_lines(source: str, grade_solution: bool) -> tuple[list[str], list[str]]:
    """Split a source cell's lines into (secret, public)."""
    lines = source.splitlines()
    has_solution_marker = any("BEGIN SOLUTION" in line for line in lines)
    if grade_solution and not has_solution_marker:
        return lines, []  # nbgrader replaces the whole cell with a stub
    secret, public, end = [], [], None
    for line in lines:
        stripped = line.strip()
        if end is None:
            end = next((e for b, e in REGIONS.items() if stripped.startswith(b)), None)
            (secret if end else public).append(line)
        else:
            secret.append(line)
            if stripped.startswith(end):
                end = None
    return secret, public


def _split_source_file(path: Path) -> tuple[set[str], set[str]]:
    """(secret, public) stripped lines of one file of solutions/<id>/."""
    secret, public = set(), set()
    if path.suffix == ".ipynb":
        cells = [(c.source, cell_roles.is_solution(c))
                 for c in nbformat.read(path, as_version=4).cells]
    else:
        try:
            cells = [(path.read_text(encoding="utf-8"), False)]
        except UnicodeDecodeError:
            return secret, public  # binary data
    for source, is_solution in cells:
        s, p = _region_lines(source, is_solution)
        secret.update(line.strip() for line in s)
        public.update(line.strip() for line in p)
    return secret, public


def secret_lines(source_dir: Path) -> set[str]:
    """Stripped lines of solution / hidden-test / mark-scheme regions of the files in
    `source_dir` (solutions/<id>/) that are not also public text of its notebooks."""
    secret, public = set(), set()
    for path in sorted(p for p in source_dir.rglob("*") if p.is_file()):
        s, p = _split_source_file(path)
        secret |= s
        if path.suffix == ".ipynb":
            # what nbgrader writes into the student notebook; other files are copied verbatim,
            # so a solution line in them is a leak even outside a marked region
            public |= p
    # nbgrader's own stubs ("# YOUR CODE HERE", "raise NotImplementedError()") are public too
    stubs = ClearSolutions()
    for stub in [*stubs.code_stub.values(), stubs.text_stub]:
        public.update(line.strip() for line in stub.splitlines())
    # lines without a letter or digit (")", "])") cannot give an answer away
    return {line for line in secret - public if any(ch.isalnum() for ch in line)}


def find_leaks(source_dir: Path, released_dir: Path) -> list[Leak]:
    """Every marker or secret line of solutions/<id>/ that appears in the released folder."""
    secrets = secret_lines(source_dir)
    leaks = []
    for path in sorted(p for p in released_dir.rglob("*") if p.is_file()):
        name = str(path.relative_to(released_dir.parent))
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data files cannot carry notebook text
        leaks += [Leak(name, marker, "instructor marker") for marker in MARKERS if marker in raw]
        for line in _text_lines(path, raw):
            if line.strip() in secrets:
                leaks.append(Leak(name, line.strip(), "solution or hidden-test line"))
    return leaks


def _text_lines(path: Path, raw: str) -> list[str]:
    if path.suffix != ".ipynb":
        return raw.splitlines()
    nb = json.loads(raw)
    lines = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        lines += ("".join(source) if isinstance(source, list) else source).splitlines()
        for output in cell.get("outputs", []):
            lines += json.dumps(output).splitlines()
    return lines


def release(roots: Roots, assignment_ids: list[str], log=print) -> None:
    """Release each assignment into roots.exercises; ReleaseError (nothing written) on a leak."""
    with tempfile.TemporaryDirectory(prefix="grader-release-out-") as tmp:
        staged = {}
        for assignment_id in assignment_ids:
            staged[assignment_id] = generate_release(roots, assignment_id, Path(tmp))
            leaks = find_leaks(roots.solutions / assignment_id, staged[assignment_id])
            if leaks:
                raise ReleaseError(
                    f"refusing to release {assignment_id}: {len(leaks)} leak(s) of instructor "
                    "text into the student version (nothing written to exercises/):\n  "
                    + "\n  ".join(str(leak) for leak in leaks[:20]))
        for assignment_id, folder in staged.items():
            dest = roots.exercises / assignment_id
            roots.exercises.mkdir(parents=True, exist_ok=True)
            replace_tree(folder, dest)
            log(f"released {assignment_id} -> {dest}")


def check_committed_release(roots: Roots, assignment_id: str) -> list[str]:
    """Problems with exercises/<id>/: missing, stale (differs from a fresh release), or leaking."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="grader-release-cmp-") as tmp:
        fresh = generate_release(roots, assignment_id, Path(tmp))
        committed = roots.exercises / assignment_id
        if not committed.is_dir():
            return [f"{committed} is missing; run `python -m grader release`"]
        fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        for rel in sorted(fresh_files):
            if not (committed / rel).is_file():
                problems.append(f"{committed / rel} is missing")
            elif (committed / rel).read_bytes() != (fresh / rel).read_bytes():
                problems.append(f"{committed / rel} differs from what release produces "
                                "(stale; run `python -m grader release`)")
        extra = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
        problems += [f"{committed / rel} is not produced by release" for rel in
                     sorted(extra - fresh_files)]
        problems += [f"leak: {leak}" for leak in
                     find_leaks(roots.solutions / assignment_id, committed)]
    return problems
