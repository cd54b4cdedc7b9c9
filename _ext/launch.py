"""Launch buttons of the chapters open their paired notebooks, book/<chapter>.ipynb.

sphinx-book-theme points a MyST Markdown chapter's Binder, JupyterHub and Colab buttons at
`book/<chapter>.md` in the repository of `repository.url`: Colab cannot open a `.md`, and Binder
and JupyterHub open it as text (no jupytext there). `python -m grader publish --self-study`
writes that repository's tree with a paired notebook next to every chapter: the executed
notebook of this build (which the theme also offers as the page's `.ipynb` download), with a
first cell that makes the course library importable on Colab and Binder
(grader/reader/chapter_setup.py). This extension points the buttons at it, after the theme has
made them (`html-page-context`, priority 502 > the theme's 501). The exercise pages are notebooks
already and keep their buttons.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _retarget(buttons: list[dict[str, Any]], old: str, new: str) -> None:
    for button in buttons:
        if isinstance(button.get("url"), str):
            button["url"] = button["url"].replace(old, new)
        _retarget(button.get("buttons", []), old, new)


def point_at_paired_notebook(app: Sphinx, pagename: str, templatename: str,
                             context: dict[str, Any], doctree) -> None:
    source = str(context.get("sourcename", ""))
    if not source.endswith((".md", ".md.txt")) or "ipynb_source" not in context:
        return  # not a MyST notebook page (the theme adds ipynb_source for those)
    _retarget(context.get("header_buttons", []), f"{pagename}.md", f"{pagename}.ipynb")


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", point_at_paired_notebook, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
