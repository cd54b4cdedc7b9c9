"""The book builds exactly as `make book` builds it, and publishes no solution.

Runs the real `jupyter-book build . -W -n --keep-going` (cached execution: chapters whose source
did not change reuse their outputs from _build/.jupyter_cache), then checks the HTML: every TOC
page exists, nothing from solutions/ or grader/ was rendered, and no text that only solutions/
holds (answer regions, hidden tests, model answers to written questions) appears on any page.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest
from conftest import REPO as ROOT
from site_tools import toc_pages

pytestmark = pytest.mark.slow

HTML = ROOT / "_build" / "html"
BUILD_TIMEOUT_S = 30 * 60  # a cold build is ~6 min on 2 free cores; leave room for a busy CI
MARKERS = ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"]
MIN_LINE = 20  # shorter lines ("return x", "model.eval()") are too generic to call a leak
REGION_START = re.compile(r"#+\s*BEGIN (SOLUTION|HIDDEN TESTS)")
REGION_END = re.compile(r"#+\s*END (SOLUTION|HIDDEN TESTS)")


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, PATH=f"{jupyter_book.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               COURSE_EDITION="course")  # the default edition, whatever the shell says
    return subprocess.run(
        [str(jupyter_book), "build", ".", "-W", "-n", "--keep-going"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


@cache
def page_texts() -> dict[str, str]:
    """Visible text of every built HTML page (tags removed, entities decoded), by path."""
    texts = {}
    for path in HTML.rglob("*.html"):
        raw = path.read_text(encoding="utf-8", errors="replace")
        texts[str(path.relative_to(HTML))] = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return texts


def solution_only_lines(notebook: Path) -> list[str]:
    """Lines of the instructor notebook that a published page must not show.

    Code inside BEGIN/END SOLUTION and BEGIN/END HIDDEN TESTS, and the model answers of written
    questions (markdown cells nbgrader marks as solutions); minus comments, short lines and lines
    that are public anyway (in the released student notebook or in the course library, whose
    source the chapters show on purpose).
    """
    solution = nbformat.read(notebook, as_version=4)
    lines = []
    for cell in solution.cells:
        meta = cell.metadata.get("nbgrader", {})
        source = cell.source.splitlines()
        if cell.cell_type == "markdown" and meta.get("solution"):
            lines += [s.strip() for s in source if "SOLUTION" not in s]
            continue
        inside = False
        for line in source:
            stripped = line.strip()
            if REGION_START.search(stripped):
                inside = True
            elif REGION_END.search(stripped):
                inside = False
            elif inside and not stripped.startswith("#"):
                lines.append(stripped)
    public = public_text()
    return [s for s in lines if len(s) >= MIN_LINE and s not in public]


@cache
def public_text() -> str:
    """Text that is public by design: the released notebooks and the course library's source."""
    parts = [p.read_text() for p in sorted((ROOT / "src" / "resnet_course").rglob("*.py"))]
    for released in sorted((ROOT / "exercises").glob("*/*.ipynb")):
        parts += [cell.source for cell in nbformat.read(released, as_version=4).cells]
    return "\n".join(parts)


def test_book_builds_without_warnings(build):
    log = build.stdout + build.stderr
    assert build.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    warnings = [line for line in log.splitlines() if "WARNING:" in line]
    assert not warnings, "the build printed warnings:\n" + "\n".join(warnings)


def test_every_toc_page_is_built(build):
    missing = [page for page in toc_pages() if not (HTML / f"{page}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"
    assert (HTML / "index.html").is_file()


def test_no_solutions_or_grader_rendered(build):
    rendered = [str(p.relative_to(HTML)) for p in HTML.rglob("*")
                if p.relative_to(HTML).parts[0] in {"solutions", "grader", "tests", "src"}]
    assert not rendered, f"private or non-book folders were rendered: {rendered[:10]}"
    sources = HTML / "_sources"
    if sources.is_dir():
        leaked = [str(p) for p in sources.rglob("*")
                  if p.relative_to(sources).parts[0] in {"solutions", "grader"}]
        assert not leaked, leaked


def test_no_solution_markers_in_html(build):
    hits = [(page, marker) for page, text in page_texts().items()
            for marker in MARKERS if marker in text]
    assert not hits, f"solution markers on built pages: {hits[:10]}"


@pytest.mark.parametrize(
    "notebook",
    sorted((ROOT / "solutions").glob("*/*.ipynb")),
    ids=lambda p: p.parent.name,
)
def test_no_solution_source_in_html(build, notebook):
    lines = solution_only_lines(notebook)
    hits = [(page, line) for line in lines for page, text in page_texts().items() if line in text]
    assert not hits, f"text only {notebook.relative_to(ROOT)} holds appears on pages: {hits[:10]}"


def test_exercise_pages_show_notebooks_unexecuted_with_download_and_launch(build):
    for page in toc_pages():
        if not page.startswith("exercises/"):
            continue
        text = (HTML / f"{page}.html").read_text(encoding="utf-8")
        assert "download-source-button" in text, f"{page}: no .ipynb download button"
        for service in ("mybinder.org", "colab.research.google.com", "git-pull?repo="):
            assert service in text, f"{page}: no launch button for {service}"
        # shown, not executed: the student stubs would raise NotImplementedError
        assert "Traceback" not in page_texts()[f"{page}.html"], f"{page} shows an execution error"


def test_chapter_figures_have_alt_text_and_execution_table(build):
    for page in toc_pages():
        if not page.startswith("book/"):
            continue
        text = (HTML / f"{page}.html").read_text(encoding="utf-8")
        for img in re.findall(r"<img\b[^>]*>", text):
            alt = re.search(r'alt="([^"]*)"', img)
            assert alt and alt.group(1).strip(), f"{page}: image without alt text: {img[:120]}"
    table = page_texts()["book/execution_times.html"]
    for page in toc_pages():
        if page.startswith("book/") and (ROOT / f"{page}.md").read_text().find("code-cell") >= 0:
            assert page in table, f"{page} missing from the execution-time table"


def test_chapters_executed_in_parallel_are_read_from_the_cache(build):
    """_ext/parallel_execution.py executes the uncached chapters first; myst-nb must then find
    every one of them in the cache (same key) instead of executing it a second time."""
    log = build.stdout + build.stderr
    executed = re.search(r"executing (\d+) notebooks on (\d+) processes", log)
    again = [line for line in log.splitlines() if "Executing notebook" in line]
    if executed:
        assert not again, "executed twice (cache key differs?):\n" + "\n".join(again)
        assert log.count("Using cached notebook") >= int(executed.group(1))
