"""What a feedback page loads: MathJax from DIR/feedback/_assets/, never from the network.

nbgrader's feedback template loads MathJax from a CDN, so a page read offline (or where the CDN
is blocked) shows raw TeX, and every page a student opens asks a third party for a script.
``local_mathjax`` points the page at a copy in ``DIR/feedback/_assets/mathjax/`` instead (by a
relative URL, so the feedback folder can be moved or zipped whole) and drops any other remote
script; ``install_mathjax`` writes that copy once per DIR. The copy is MathJax 2.7 from the PyPI
package ``jupyter-server-mathjax`` (pinned in requirements.txt), the one the book serves itself
(_ext/local_mathjax.py). A folder name starting with "_" is never a student id
(grader.files.NAME_PATTERN), so the assets cannot meet a student's folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from importlib.metadata import version as package_version
from pathlib import Path

import jupyter_server_mathjax

from grader.files import lstat_kind, remove_tree

ASSETS = "_assets"  # DIR/feedback/_assets/
MATHJAX = "mathjax"
# A page is DIR/feedback/<student>/<assignment>/<assignment>.html: two folders below feedback/.
PAGE_TO_ASSETS = f"../../{ASSETS}/{MATHJAX}"
# The package bundles one combined configuration and the STIX-Web fonts of the HTML-CSS output
# only (as the book's _ext/local_mathjax.py sets it up); "Safe" as nbconvert's own URL has it.
MATHJAX_URL = f"{PAGE_TO_ASSETS}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
MATHJAX_CONFIG = {
    "HTML-CSS": {"availableFonts": [], "webFont": "STIX-Web", "imageFont": None},
    "MMLorHTML": {"prefer": "HTML"},  # Chromium's native MathML would want the TeX fonts
    "showMathMenu": False,
    "fast-preview": {"disabled": True},  # its CommonHTML preview wants the TeX fonts too
    "menuSettings": {"CHTMLpreview": False, "assistiveMML": False},
    "AssistiveMML": {"disabled": True},
    "messageStyle": "none",
}
STAMP = ".version"  # in the copy: the package version it came from

# <script src="http(s)://..." ...></script> or protocol-relative //...; the template's MathJax
# is one of them
REMOTE_SCRIPT = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>\s*</script>""", re.IGNORECASE)


def mathjax_source() -> Path:
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise FileNotFoundError(f"MathJax.js not found in {static}; reinstall "
                                "jupyter-server-mathjax (requirements.txt)")
    return static


def local_mathjax(page: str) -> str:
    """The page with its MathJax loaded from the local copy and no remote script left."""
    config = ('<script type="text/x-mathjax-config">MathJax.Hub.Config('
              f"{json.dumps(MATHJAX_CONFIG)});</script>\n"
              f'<script src="{MATHJAX_URL}"></script>')
    done = [False]

    def replace(m: re.Match) -> str:
        if "mathjax" in m.group(0).lower() and not done[0]:
            done[0] = True
            return config
        return ""  # a remote script of any other kind: not on a page a student opens offline
    return REMOTE_SCRIPT.sub(replace, page)


def install_mathjax(feedback_root: Path) -> Path:
    """DIR/feedback/_assets/mathjax/, copied from the package unless this version is there.
    Safe to call from several grading processes at once: each copies into its own temporary
    folder and renames it into place; nothing is written through a link."""
    version = package_version("jupyter-server-mathjax")
    assets = Path(feedback_root) / ASSETS
    target = assets / MATHJAX
    if _current(target, version):
        return target
    if lstat_kind(assets) not in ("dir", "missing"):
        _clear(assets)
    assets.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mathjax-", dir=assets))
    try:
        shutil.copytree(mathjax_source(), tmp / MATHJAX)
        (tmp / MATHJAX / STAMP).write_text(version)
        if not _current(target, version) and lstat_kind(target) != "missing":
            try:  # an older copy (or whatever is there): moved aside at once, then removed
                os.rename(target, tmp / "old")
            except OSError:
                pass  # another process moved it first
        try:
            os.rename(tmp / MATHJAX, target)
        except OSError:  # another process put its copy there first
            if not _current(target, version):
                raise
    finally:
        _clear(tmp)
    return target


def _current(target: Path, version: str) -> bool:
    stamp = target / STAMP
    return lstat_kind(target) == "dir" and lstat_kind(stamp) == "file" and \
        stamp.read_text() == version


def _clear(path: Path) -> None:
    """Remove whatever is at `path` (a folder, a file, a link: never followed)."""
    kind = lstat_kind(path)
    if kind == "dir":
        remove_tree(path)
    elif kind != "missing":
        os.unlink(path)
