"""Launch buttons of the chapters open their paired notebooks, book/<chapter>.ipynb.

sphinx-book-theme points a MyST Markdown chapter's Binder, JupyterHub and Colab buttons at
`book/<chapter>.md` in the repository of `repository.url`: Colab cannot open a `.md`, and Binder
and JupyterHub open it as text (no jupytext there). `python -m grader publish --self-study`
writes that repository's tree with a paired notebook next to every chapter: the chapter as
myst-nb reads it (the notebook the theme also offers as the page's `.ipynb` download), with a
first cell that makes the course library importable on Colab and Binder
(grader/reader/chapter_setup.py). This extension points the buttons at it, after the theme has
made them (`html-page-context`, priority 502 > the theme's 501).

The exercise pages are notebooks already. With `starter_repository` set (_config.yml,
`sphinx.config`), their buttons open the exercise in that repository instead, the student
starter tree that `python -m grader publish` writes into DEST/starter, which has no course
library: a student who launches an exercise is not put in a clone that holds the answers.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ConfigError


def _retarget(buttons: list[dict[str, Any]], old: str, new: str) -> None:
    for button in buttons:
        if isinstance(button.get("url"), str):
            button["url"] = button["url"].replace(old, new)
        _retarget(button.get("buttons", []), old, new)


def _github_parts(url: str) -> tuple[str, str]:
    """("github.com/org/repo", "repo") of a GitHub repository URL."""
    parts = url.rstrip("/").removesuffix(".git").split("/")
    if len(parts) < 5 or parts[2] != "github.com":
        raise ConfigError(f"not a GitHub repository URL: {url!r} (Colab needs one)")
    return "/".join(parts[2:5]), parts[4]


def point_at_paired_notebook(app: Sphinx, pagename: str, templatename: str,
                             context: dict[str, Any], doctree) -> None:
    buttons = context.get("header_buttons", [])
    source = str(context.get("sourcename", ""))
    if source.endswith((".md", ".md.txt")) and "ipynb_source" in context:
        # a MyST notebook page (the theme adds ipynb_source for those)
        _retarget(buttons, f"{pagename}.md", f"{pagename}.ipynb")
    starter = app.config.starter_repository
    if starter and pagename.startswith("exercises/"):
        reader = (app.config.html_theme_options or {}).get("repository_url", "")
        (old, old_name), (new, new_name) = _github_parts(reader), _github_parts(starter)
        _retarget(buttons, old.split("/", 1)[1] + "/", new.split("/", 1)[1] + "/")  # Binder, Colab
        _retarget(buttons, old, new)  # JupyterHub's repo=
        _retarget(buttons, f"tree/{old_name}/", f"tree/{new_name}/")  # JupyterHub's clone folder


def setup(app: Sphinx) -> dict:
    app.add_config_value("starter_repository", "", "html", types=[str])
    app.connect("html-page-context", point_at_paired_notebook, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
