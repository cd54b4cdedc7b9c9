"""Serve MathJax from the built site itself, so the book's maths renders offline.

MathJax 2.7 ships inside the PyPI package ``jupyter-server-mathjax`` (pinned in
requirements.txt). This extension points Sphinx's ``mathjax_path`` at a copy of it under
``_static/mathjax/`` and copies the files there when the HTML build finishes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupyter_server_mathjax
from sphinx.application import Sphinx

# MathJax 2 reads its configuration from the query string; Sphinx special-cases
# "MathJax.js?" and adds no checksum to it.
MATHJAX_PATH = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
# The package bundles only the STIX-Web fonts for the HTML-CSS output (as Jupyter configures
# it); without this MathJax asks for the TeX fonts, which are not there.
MATHJAX2_CONFIG = {
    "HTML-CSS": {"availableFonts": [], "webFont": "STIX-Web", "imageFont": None},
    # Chromium has native MathML, for which MathJax would pick its NativeMML output and fetch
    # TeX fonts the package lacks; always use HTML-CSS output with STIX-Web.
    "MMLorHTML": {"prefer": "HTML"},
    "showMathMenu": False,
    # The fast CommonHTML preview would fetch TeX fonts that the package does not bundle.
    "fast-preview": {"disabled": True},
    # The hidden assistive MathML copy uses the TeX font families of the NativeMML styles
    # (fetching TeX fonts the package lacks); MathJax's own output carries the maths.
    "menuSettings": {"CHTMLpreview": False, "assistiveMML": False},
    "AssistiveMML": {"disabled": True},
    "messageStyle": "none",
}


def mathjax_source() -> Path:
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise FileNotFoundError(
            f"MathJax.js not found in {static}; reinstall jupyter-server-mathjax"
        )
    return static


def use_local_mathjax(app: Sphinx, config) -> None:
    config.mathjax_path = MATHJAX_PATH
    config.mathjax2_config = MATHJAX2_CONFIG
    config.mathjax3_config = None
    # myst-parser would add a MathJax 3 `window.MathJax = {...}` block, which MathJax 2 reads as
    # its own configuration and then loads no input or output jax.
    config.myst_update_mathjax = False


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", use_local_mathjax, priority=900)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
