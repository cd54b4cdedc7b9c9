"""Pages readable on a phone (390 px wide): figures at a legible size, code without side scroll.

At 390 px the theme shrinks a two-panel figure to the column's width, so its labels are a few
pixels high; and a code line longer than about 40 characters needs sideways scrolling. This
extension adds static/narrow_screens.css to every page; under 640 px it

- shows each figure's image at least 600 px wide (about its width on a desktop) inside a
  horizontally scrollable box, with the caption kept to the screen's width: pinch or swipe to
  see the panels, whose text is then as large as on a desktop;
- wraps code blocks (`white-space: pre-wrap`): a long line continues on the next, with no
  sideways scrolling; copying (the copy button) still gives the original lines; inline code
  may break anywhere;
- puts a wide table in its own sideways-scrolling box, so the page itself never scrolls
  sideways.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

STATIC = Path(__file__).resolve().parent / "static"


def _add_static(app: Sphinx, config: Config) -> None:
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _add_static)
    app.add_css_file("narrow_screens.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
