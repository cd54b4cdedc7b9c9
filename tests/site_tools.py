"""Helpers for checking the built site: which pages the TOC lists, serving the HTML, links.

Used by tests/book/test_site.py. No network: the site is served from _build/html on 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from conftest import REPO as ROOT

HTML = ROOT / "_build" / "html"
# What the built site depends on: if any of these is newer than the site, rebuild.
SOURCES = ["_config.yml", "_toc.yml", "references.bib", "book", "exercises", "src/resnet_course",
           "_ext"]


def toc_pages(toc_file: Path = ROOT / "_toc.yml") -> list[str]:
    """Every document in _toc.yml, as paths without suffix (e.g. 'book/intro'), in order."""
    toc = yaml.safe_load(toc_file.read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return [str(Path(p).with_suffix("")) if Path(p).suffix in {".md", ".ipynb"} else p
            for p in pages]


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                newest = max(newest, f.stat().st_mtime)
    return newest


def ensure_built() -> Path:
    """Build the book (cached execution) unless _build/html is newer than its sources."""
    index = HTML / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                   COURSE_EDITION="course")  # the default edition, whatever the shell says
        cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-W", "-n",
               "--keep-going"]
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            log = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            raise RuntimeError(f"book build failed:\n{log}")
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _LinkParser(HTMLParser):
    """Collects the ids defined in a page and the local links (href/src) it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(values[key])
        for key in ("href", "src"):
            if values.get(key):
                self.links.append(values[key])


def _is_local(link: str) -> bool:
    parts = urlsplit(link)
    return not parts.scheme and not parts.netloc and not link.startswith("//")


def broken_links(site: Path) -> list[str]:
    """Every local href/src in every page whose file, or #fragment in that file, is missing."""
    parsed: dict[Path, _LinkParser] = {}

    def parse(page: Path) -> _LinkParser:
        if page not in parsed:
            parser = _LinkParser()
            parser.feed(page.read_text(errors="replace"))
            parsed[page] = parser
        return parsed[page]

    broken = []
    pages = [p for p in sorted(site.rglob("*.html")) if "_static" not in p.relative_to(site).parts]
    for page in pages:
        for link in parse(page).links:
            if not _is_local(link):
                continue
            parts = urlsplit(link)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in parse(target).ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    return broken
