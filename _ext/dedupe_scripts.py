"""Drop repeated inline scripts from each page.

sphinx-thebe (which Jupyter Book 1 always loads) registers its configuration script
``const THEBE_JS_URL = ...`` twice under Sphinx 7.4, so every page declares the same ``const``
twice and the browser reports "Identifier 'THEBE_JS_URL' has already been declared".
Identical script entries are removed here, keeping the first.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _key(script) -> tuple[str, str]:
    """Same file (or same inline body) with the same attributes, whatever its priority."""
    filename = getattr(script, "filename", script) or ""  # inline scripts: None or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), repr(sorted(attributes.items()))


def dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
