"""Feedback pages render their maths offline (grader.commands.feedback_assets): MathJax comes from a
copy in DIR/feedback/_assets/, by a relative URL, and the page loads no remote script."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from grader.commands.feedback_assets import (
    ASSETS,
    MATHJAX,
    MATHJAX_URL,
    STAMP,
    install_mathjax,
    local_mathjax,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REMOTE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
MATHS = r"Euler: $e^{i\pi} + 1 = 0$, and $$\sum_{k=1}^{n} k = \frac{n(n+1)}{2}$$"


def feedback_page() -> str:
    """A page as nbgrader's GenerateFeedback renders it (its `feedback` template)."""
    from nbconvert import HTMLExporter
    from nbgrader.converters import GenerateFeedback

    config = GenerateFeedback().config  # the template and its static paths, as nbgrader sets
    nb = new_notebook(cells=[new_markdown_cell(MATHS)])
    resources = {"nbgrader": {"notebook": "toy", "score": 1, "max_score": 2, "late_penalty": 0}}
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]


def test_the_page_loads_mathjax_from_the_local_copy_only():
    raw = feedback_page()
    assert REMOTE.search(raw)  # nbgrader's template: MathJax from a CDN
    page = local_mathjax(raw)
    assert not REMOTE.search(page), REMOTE.search(page)
    assert f'<script src="{MATHJAX_URL}"></script>' in page
    assert "STIX-Web" in page  # the fonts the copy has
    assert MATHS.split("$")[1] in page  # the maths itself is still there for MathJax
    # any other remote script goes too
    extra = '<script src="https://cdn.example.org/x.js"></script><script src=//e.org/y.js></script>'
    assert not REMOTE.search(local_mathjax(raw.replace("</head>", extra + "</head>")))


def test_the_copy_is_written_once_where_the_page_looks(tmp_path):
    feedback = tmp_path / "feedback"
    page = feedback / "alice" / "ex1" / "ex1.html"
    page.parent.mkdir(parents=True)
    target = install_mathjax(feedback)
    assert target == feedback / ASSETS / MATHJAX
    url = MATHJAX_URL.split("?")[0]
    assert (page.parent / url).resolve() == (target / "MathJax.js").resolve()
    assert (target / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()  # with its jax
    assert list((target / "fonts" / "HTML-CSS" / "STIX-Web" / "woff").iterdir())
    stamp = (target / STAMP).stat().st_mtime_ns
    install_mathjax(feedback)  # already there: not copied again
    assert (target / STAMP).stat().st_mtime_ns == stamp
    assert [p.name for p in (feedback / ASSETS).iterdir()] == [MATHJAX]  # no temporary left


def test_a_copy_of_another_version_is_replaced(tmp_path):
    target = tmp_path / "feedback" / ASSETS / MATHJAX
    target.mkdir(parents=True)
    (target / STAMP).write_text("0.0.1")
    (target / "stale.js").write_text("old")
    install_mathjax(tmp_path / "feedback")
    assert not (target / "stale.js").exists() and (target / "MathJax.js").is_file()
    assert [p.name for p in target.parent.iterdir()] == [MATHJAX]


def test_a_link_in_the_way_is_replaced_not_followed(tmp_path):
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    os.symlink(decoy, feedback / ASSETS)
    install_mathjax(feedback)
    assert list(decoy.iterdir()) == []
    assert not (feedback / ASSETS).is_symlink() and (feedback / ASSETS / MATHJAX).is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed "
                    "(make system-deps)")
def test_the_maths_renders_with_the_network_blocked(tmp_path):
    """The page in Chromium, every request outside the served feedback folder refused: MathJax
    typesets the formulas (no raw TeX left in the text)."""
    from playwright.sync_api import sync_playwright

    feedback = tmp_path / "feedback"
    page_path = feedback / "alice" / "toy" / "toy.html"
    page_path.parent.mkdir(parents=True)
    page_path.write_text(local_mathjax(feedback_page()), encoding="utf-8")
    install_mathjax(feedback)
    handler = lambda *a, **k: _Quiet(*a, directory=str(feedback), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    refused: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                base) else (refused.append(route.request.url), route.abort()))
            page.goto(base + "alice/toy/toy.html")
            try:  # typeset: MathJax's queue is done and the text shows no TeX any more
                page.wait_for_function(
                    "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && "
                    "document.querySelectorAll('.MathJax, .MathJax_Display').length >= 2 && "
                    "!document.body.innerText.includes('\\\\frac')", timeout=90_000)
            except Exception:  # noqa: BLE001 - the assertions below say what is wrong
                pass
            text = page.evaluate("document.body.innerText")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert refused == []
    assert "e^{i" not in text and "\\frac" not in text, text[:500]
    assert "\N{MATHEMATICAL ITALIC SMALL E}" in text and "\N{N-ARY SUMMATION}" in text, text[:500]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
