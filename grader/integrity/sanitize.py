"""Student notebooks with active content removed, before any page renders them.

The autograded notebook is what feedback pages (GenerateFeedback) and formgrader show the
instructor; whatever a student put in it must not run there (a script in formgrader runs with
the instructor's Jupyter session: it can write files and change grades). `sanitize_notebook`:

* markdown and raw cells: HTML cleaned by bleach (nbconvert's SanitizeHTML, a few more
  harmless tags); link targets with a scheme other than http(s)/mailto (javascript:,
  data:, vbscript:, also entity-encoded) replaced by "#blocked";
* outputs: only text/plain, text/latex, application/json, PNG and JPEG kept as they are;
  text/html and text/markdown cleaned; JavaScript, SVG, widget views and every other type
  dropped; output metadata reduced to numeric image width/height (nbconvert's templates write
  them into an unquoted attribute);
* attachments: PNG, JPEG and GIF only; cell metadata: nbgrader's keys with plain values;
  notebook metadata: fixed kernelspec and language_info, and the grader's run report.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import nbformat
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat import NotebookNode

from grader.files import read_bytes, write_atomic
from grader.isolation.limits import RUN_METADATA_KEY

EXTRA_TAGS = {"p", "div", "span", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
              "sub", "sup", "table", "thead", "tbody", "tr", "th", "td", "img", "details",
              "summary", "del", "s", "u", "dl", "dt", "dd", "kbd", "var", "samp", "small"}
EXTRA_ATTRIBUTES = {"img": ["src", "alt", "title", "width", "height"], "*": ["class"],
                    "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"]}
SAFE_SCHEMES = {"http", "https", "mailto", "attachment"}
SAFE_ATTACHMENTS = {"image/png", "image/jpeg", "image/gif"}
# Notebook metadata the pages use, as fixed values (the student's and the kernel's own
# strings never reach a template); the grader's run report is the grader's own.
PAGE_METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"},
                 "language_info": {"name": "python", "pygments_lexer": "ipython3",
                                   "codemirror_mode": {"name": "ipython", "version": 3},
                                   "file_extension": ".py", "mimetype": "text/x-python"}}
SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# Markdown link and image targets: [text](target ...) and reference definitions [x]: target
LINK_TARGET = re.compile(r"(\]\(\s*<?)([^\s)>]*)|(^[ \t]*\[[^\]\n]+\]:[ \t]*<?)(\S+)", re.M)
URL_ATTRIBUTE = re.compile(r'(\b(?:href|src)=")([^"]*)"', re.I)
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _cleaner() -> SanitizeHTML:
    from bleach import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

    attributes = {k: list(v) for k, v in ALLOWED_ATTRIBUTES.items()}
    for tag, names in EXTRA_ATTRIBUTES.items():
        attributes[tag] = sorted({*attributes.get(tag, []), *names})
    return SanitizeHTML(tags=sorted(set(ALLOWED_TAGS) | EXTRA_TAGS), attributes=attributes)


def unsafe_target(target: str) -> bool:
    """A URL whose scheme (after HTML entities and control characters are removed, as a
    browser reads it) is not http(s), mailto or a cell attachment."""
    decoded = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(html.unescape(target)))
    match = SCHEME.match(decoded)
    return bool(match) and match.group(1).lower() not in SAFE_SCHEMES


def block_links(markdown: str) -> str:
    def replace(m: re.Match) -> str:
        prefix, target = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return prefix + ("#blocked" if unsafe_target(target) else target)

    return LINK_TARGET.sub(replace, markdown)


def block_attributes(cleaned_html: str) -> str:
    """href/src values bleach let through but a browser would run (bleach reads
    "javascript:1" as a path with a port); bleach writes attributes double-quoted."""
    return URL_ATTRIBUTE.sub(
        lambda m: m.group(1) + ("#blocked" if unsafe_target(m.group(2)) else m.group(2)) + '"',
        cleaned_html)


def clean(cleaner: SanitizeHTML, text: str) -> str:
    """HTML or markdown text with bleach's cleaning and every unsafe link target blocked."""
    return block_links(block_attributes(cleaner.sanitize_html_tags(text)))


def _image_size(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clean_output_metadata(metadata: dict) -> dict:
    clean = {}
    for mime in ("image/png", "image/jpeg"):
        sizes = metadata.get(mime)
        if isinstance(sizes, dict):
            kept = {k: sizes[k] for k in ("width", "height") if _image_size(sizes.get(k))}
            if kept:
                clean[mime] = kept
    return clean


def _clean_cell_metadata(metadata: dict) -> dict:
    nbgrader = metadata.get("nbgrader")
    if not isinstance(nbgrader, dict):
        return {}
    kept = {k: v for k, v in nbgrader.items()
            if isinstance(v, (bool, int, float)) or v is None
            or (isinstance(v, str) and SAFE_ID.fullmatch(v))}
    return {"nbgrader": kept}


def sanitize_notebook(nb: NotebookNode) -> NotebookNode:
    """`nb` with every active or unknown content removed (changed in place and returned)."""
    cleaner = _cleaner()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type in ("markdown", "raw"):
            cell.source = clean(cleaner, cell.source)
            attachments = cell.get("attachments") or {}
            cell.attachments = {
                name: {m: v for m, v in item.items() if m in SAFE_ATTACHMENTS}
                for name, item in attachments.items()
                if isinstance(item, dict) and SAFE_ID.fullmatch(str(name))}
            if not cell.attachments:
                del cell["attachments"]
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") in ("display_data", "execute_result"):
                    output.metadata = _clean_output_metadata(output.get("metadata") or {})
            cell.outputs = cleaner.sanitize_code_outputs(cell.get("outputs", []))
            for output in cell.outputs:
                if "data" in output:
                    for mime in ("text/html", "text/markdown"):
                        if mime in output.data:
                            output.data[mime] = block_attributes(
                                block_links(str(output.data[mime])))
            if not isinstance(cell.get("execution_count"), int):
                cell.execution_count = None
        cell.metadata = _clean_cell_metadata(cell.get("metadata") or {})
        if "id" in cell and not SAFE_ID.fullmatch(str(cell.id)):
            cell.id = f"cell-{index}"
    run_report = nb.metadata.get(RUN_METADATA_KEY)
    nb.metadata = NotebookNode(copy.deepcopy(PAGE_METADATA))
    if isinstance(run_report, dict):
        nb.metadata[RUN_METADATA_KEY] = run_report
    return nb


def sanitize_file(path: Path) -> None:
    """Sanitise a stored notebook in place: read without following links, rewritten through a
    new file and rename() (grader.files)."""
    nb = nbformat.reads(read_bytes(path).decode("utf-8"), as_version=4)
    write_atomic(path, nbformat.writes(sanitize_notebook(nb)).encode("utf-8"), mode=0o644)
