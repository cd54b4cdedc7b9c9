"""The built site as a reader meets it, checked in headless Chromium (Debian's, no download).

Every TOC page loads without console errors, shows its figures, renders its maths offline,
is reachable by navigation; search finds "degradation"; exercise pages offer download and
launch buttons and no solution text; screenshots at 1280 px and 390 px go to
_build/screenshots/; every internal link resolves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from site_tools import ROOT, broken_links, ensure_built, serve, toc_pages

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "_build" / "screenshots"
# Flags for a closed network: without the background-networking ones Chromium keeps trying
# (and failing) to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LEAK_MARKERS = ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"]
# Text of the article with code, scripts and MathJax's own source removed.
ARTICLE_TEXT_JS = """() => {
  const article = document.querySelector('article') || document.body;
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .MathJax_Preview').forEach(e => e.remove());
  return clone.textContent;
}"""


@pytest.fixture(scope="module")
def site():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (make test installs it: make system-deps)")
    html = ensure_built()
    with serve(html) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageVisit:
    """A page opened with external requests blocked and console errors recorded."""

    def __init__(self, browser, base_url: str, width: int = 1280, height: int = 900):
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._request_failed)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _route(self, route) -> None:
        if route.request.url.startswith(self.base_url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _console(self, message) -> None:
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource"):
            return  # reported with its URL by _response / _request_failed instead
        if "about:blank" in message.text:
            return  # MathJax 2's font probe loads about:blank, which Chromium refuses
        self.errors.append(f"console: {message.text} ({(message.location or {}).get('url', '')})")

    def _response(self, response) -> None:
        if response.status >= 400 and response.url.startswith(self.base_url):
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def _request_failed(self, request) -> None:
        if request.url.startswith(self.base_url):
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def open(self, path: str):
        response = self.page.goto(self.base_url + path, wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        return self.page

    def close(self) -> None:
        self.context.close()


def page_url(doc: str) -> str:
    return f"{doc}.html"


def wait_for_math(page, path: str) -> None:
    """If the page has maths, wait until MathJax has typeset all of it."""
    if page.locator(".math").count() == 0:
        return
    page.wait_for_function(
        "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0"
        " && document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML').length > 0",
        timeout=30_000,
    )
    text = page.evaluate(ARTICLE_TEXT_JS)
    for raw in ("\\(", "\\[", "$$"):
        assert raw not in text, f"{path}: raw maths {raw!r} left in the rendered text"


def check_images(page, path: str) -> int:
    """Scroll every image into view; each must have loaded with a non-zero natural size."""
    images = page.locator("article img")
    for i in range(images.count()):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete", arg=image.element_handle(), timeout=10_000)
        width, alt = image.evaluate("img => [img.naturalWidth, img.getAttribute('alt')]")
        src = image.get_attribute("src")
        assert width > 0, f"{path}: image {src} is not displayed (naturalWidth 0)"
        assert alt and alt.strip(), f"{path}: image {src} has no alt text"
    return images.count()


def test_every_toc_page_loads_renders_maths_and_figures(site, browser):
    visit = PageVisit(browser, site)
    figures = {}
    try:
        for doc in toc_pages():
            page = visit.open(page_url(doc))
            wait_for_math(page, doc)
            figures[doc] = check_images(page, doc)
            text = page.evaluate("() => document.body.innerText")
            for marker in LEAK_MARKERS:
                assert marker not in text, f"{doc}: solution/hidden-test text {marker!r} on page"
        assert not visit.errors, "console errors:\n" + "\n".join(visit.errors)
    finally:
        visit.close()
    chapters = [doc for doc in figures if doc.startswith("book/") and doc != toc_pages()[0]]
    with_figures = [doc for doc in chapters if figures[doc] > 0]
    assert len(with_figures) >= 4, f"chapters with figures: {with_figures} (of {chapters})"


def test_navigation_reaches_every_page(site, browser):
    """Follow 'next' from the landing page; also every page must be in the sidebar."""
    visit = PageVisit(browser, site)
    expected = {page_url(doc) for doc in toc_pages()}
    try:
        page = visit.open("index.html")
        page.wait_for_url(f"**/{page_url(toc_pages()[0])}", timeout=15_000)
        page.wait_for_load_state("load")
        sidebar = page.eval_on_selector_all(
            "nav.bd-docs-nav a.reference.internal", "els => els.map(e => e.getAttribute('href'))")
        reached = []
        for _ in range(len(expected) + 5):
            reached.append(page.url.removeprefix(site).split("#")[0])
            following = page.locator("a.right-next")
            if following.count() == 0:
                break
            following.first.click()
            page.wait_for_load_state("load")
    finally:
        visit.close()
    missing = expected - set(reached)
    assert not missing, f"pages not reached by 'next' links: {sorted(missing)}"
    assert sidebar, "the sidebar has no links"


def test_search_finds_degradation(site, browser):
    visit = PageVisit(browser, site)
    try:
        page = visit.open("search.html?q=degradation")
        page.wait_for_selector("#search-results ul.search li", timeout=30_000)
        hits = page.locator("#search-results ul.search li").count()
        titles = page.locator("#search-results ul.search li a").all_inner_texts()
    finally:
        visit.close()
    assert hits > 0, "search for 'degradation' found nothing"
    assert any("egradation" in t for t in titles), f"no degradation page in hits: {titles}"


def test_exercise_pages_offer_download_and_launch(site, browser):
    exercises = [doc for doc in toc_pages() if doc.startswith("exercises/")]
    assert len(exercises) == 5, f"exercise pages in the TOC: {exercises}"
    visit = PageVisit(browser, site)
    try:
        for doc in exercises:
            page = visit.open(page_url(doc))
            hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
            assert any(h.endswith(".ipynb") for h in hrefs), f"{doc}: no .ipynb download link"
            for host in ("mybinder.org", "colab.research.google.com"):
                assert any(host in h for h in hrefs), f"{doc}: no launch button for {host}"
    finally:
        visit.close()


PHONE_LAYOUT_JS = """() => [
  document.documentElement.scrollWidth,
  [...document.querySelectorAll('article div.highlight pre')]
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 60)),
  [...document.querySelectorAll('article figure img')].map(img => img.clientWidth),
]"""


def test_screenshots_at_desktop_and_phone_width(site, browser):
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    narrow = []
    for label, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        visit = PageVisit(browser, site, width, height)
        try:
            for doc in toc_pages():
                page = visit.open(page_url(doc))
                wait_for_math(page, doc)
                name = doc.replace("/", "__")
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"))
                if label == "phone":
                    narrow.append((doc, page.evaluate(PHONE_LAYOUT_JS)))
        finally:
            visit.close()
    # _ext/narrow_screens.py: the page never scrolls sideways, code wraps, and each figure's
    # image keeps about its desktop width (its own box scrolls sideways)
    for doc, (page_width, scrolling_code, figure_widths) in narrow:
        assert page_width <= 390, f"{doc}: the page is {page_width} px wide at 390 px"
        assert not scrolling_code, f"{doc}: code blocks scroll sideways: {scrolling_code[:3]}"
        assert all(w >= 560 for w in figure_widths), f"{doc}: figure widths {figure_widths}"
    shots = sorted(SCREENSHOTS.glob("*.png"))
    assert len(shots) == 2 * len(toc_pages())
    assert all(s.stat().st_size > 5_000 for s in shots), "an empty-looking screenshot"


def test_internal_links_resolve(site):
    html = ROOT / "_build" / "html"
    broken = broken_links(html)
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:40])
