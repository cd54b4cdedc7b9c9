"""Both editions of the book build, and graded implementations appear only where they may.

The course edition is the default build, _build/html (tests/book/test_book.py builds it, on the same
xdist worker, before this file runs); the self-study edition
(`COURSE_EDITION=self-study jupyter-book build . -W -n --keep-going`) is built into a temporary
folder and reuses the execution cache _build/.jupyter_cache (see _ext/editions.py), so only
rendering costs time. Then every code block (`<pre>`) of every built page
is compared with every graded definition of grader/integrity/graded.py (answer cells of solutions/
and their library counterparts) as normalised token streams (grader.integrity.graded.shows):
- course edition: no code block shows one;
- self-study edition: only code blocks inside a collapsed spoiler (`<details class="spoiler">`
  without `open`) show one, and every `{graded-source}` of the chapters has its spoiler.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO as ROOT
from site_tools import ensure_built

from grader.commands.publish import reader_repository
from grader.integrity.graded import Definition, graded_definitions, normalised_tokens, shows

pytestmark = pytest.mark.slow

BUILD_TIMEOUT_S = 30 * 60
DEFS = graded_definitions(ROOT)

class CodeBlocks(HTMLParser):
    """Text of every <pre> of a page, and whether it sits in a collapsed spoiler."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, bool]] = []
        self._details: list[bool] = []  # per open <details>: is it a collapsed spoiler?
        self._pre_depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "details":
            classes = (attrs.get("class") or "").split()
            self._details.append("spoiler" in classes and "open" not in attrs)
        elif tag == "pre":
            self._pre_depth += 1

    def handle_endtag(self, tag):
        if tag == "details" and self._details:
            self._details.pop()
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
            if not self._pre_depth:
                self.blocks.append(("".join(self._text), any(self._details)))
                self._text = []

    def handle_data(self, data):
        if self._pre_depth:
            self._text.append(data)


def build(edition: str, out: Path) -> Path:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, COURSE_EDITION=edition, MPLBACKEND="Agg",
               PATH=f"{jupyter_book.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [str(jupyter_book), "build", ".", "-W", "-n", "--keep-going", "--path-output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{edition} edition failed to build:\n{log[-6000:]}"
    warnings = [line for line in log.splitlines() if "WARNING:" in line]
    assert not warnings, f"{edition} edition build warnings:\n" + "\n".join(warnings)
    return out / "_build" / "html"


def appearances(html_dir: Path) -> list[tuple[str, Definition, bool]]:
    """(page, definition, inside a collapsed spoiler) for every code block showing a definition."""
    found = []
    for path in sorted(html_dir.rglob("*.html")):
        page = str(path.relative_to(html_dir))
        parser = CodeBlocks()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        for text, hidden in parser.blocks:
            tokens = normalised_tokens(unescape(text))
            found += [(page, d, hidden) for d in DEFS if shows(d.tokens, tokens)]
    return found


@pytest.fixture(scope="module")
def course_html() -> Path:
    # the course edition is the default build, _build/html (made by tests/book/test_book.py, which
    # runs first on the same worker; built here when this file runs alone)
    return ensure_built()


@pytest.fixture(scope="module")
def course(course_html) -> list[tuple[str, Definition, bool]]:
    return appearances(course_html)


@pytest.fixture(scope="module")
def self_study(tmp_path_factory) -> list[tuple[str, Definition, bool]]:
    return appearances(build("self-study", tmp_path_factory.mktemp("self-study")))


def test_enough_graded_definitions_are_checked():
    names = {d.name for d in DEFS}
    assert len(DEFS) >= 30 and {"BasicBlock", "resnet_cifar", "train_one_epoch"} <= names


def test_course_edition_shows_no_graded_implementation(course):
    shown = sorted({(page, f"{d.origin}:{d.name}") for page, d, _ in course})
    assert not shown, f"graded implementations on pages of the course edition: {shown}"


def test_self_study_edition_shows_them_only_in_collapsed_spoilers(self_study):
    outside = sorted({(page, f"{d.origin}:{d.name}") for page, d, hidden in self_study
                      if not hidden})
    assert not outside, f"graded implementations outside spoilers: {outside}"


def test_self_study_edition_has_a_spoiler_for_every_graded_source(self_study):
    marked = set()
    for chapter in sorted((ROOT / "book").glob("*.md")):
        text = chapter.read_text(encoding="utf-8")
        for module, name in re.findall(r"```\{graded-source\} \.\./src/resnet_course/(\w+)\.py"
                                       r"\s*\n:pyobject: (\w+)", text):
            marked.add((f"resnet_course.{module}", name))
    assert len(marked) >= 10
    in_spoilers = {(d.origin, d.name) for _, d, hidden in self_study if hidden}
    assert marked <= in_spoilers, f"no spoiler shows: {sorted(marked - in_spoilers)}"


def test_intro_and_buttons_point_at_the_reader_repository(course_html):
    url = reader_repository(ROOT)
    intro = (course_html / "book" / "intro.html").read_text(encoding="utf-8")
    text = unescape(re.sub(r"<[^>]+>", "", intro))
    assert f"git clone {url}" in text and f"cd {url.rsplit('/', 1)[-1]}" in text
    assert "{{" not in text
    assert f'href="{url}"' in intro  # the repository button
