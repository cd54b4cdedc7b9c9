"""DIR/similarity/: one HTML page per reported pair, the two cells side by side with the matched
lines marked, and index.html listing the pairs (grader.integrity.similarity writes them with
DIR/similarity.csv, whose `report` column names each pair's page).

Student code is untrusted data: every character of it (and of student ids and cell names) is
HTML-escaped, the pages carry no script, and a Content-Security-Policy forbids any that a bug
might let through. The folder is the report's own: its old pages are replaced on every run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from grader.bridge.course import CourseLayout
from grader.files import lstat_kind, make_folders, write_atomic

FOLDER = CourseLayout.SIMILARITY_PAGES  # DIR/similarity/
STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table.code { border-collapse: collapse; font-family: monospace; font-size: 13px; width: 100%; }
table.code td { vertical-align: top; white-space: pre-wrap; padding: 0 .4em; }
td.number { color: #888; text-align: right; user-select: none; width: 3em; }
tr.match td.text { background: #ffe9a8; }
div.sides { display: flex; gap: 1.5em; }
div.side { flex: 1; min-width: 0; }
table.pairs td, table.pairs th { padding: .2em .6em; text-align: left; }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _lines(ranges: str) -> set[int]:
    """'3-5,7' -> {3, 4, 5, 7}."""
    found: set[int] = set()
    for part in filter(None, ranges.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


def _code(source: str, marked: set[int]) -> str:
    rows = []
    for number, line in enumerate(source.splitlines(), start=1):
        css = ' class="match"' if number in marked else ""
        rows.append(f'<tr{css}><td class="number">{number}</td>'
                    f'<td class="text">{html.escape(line)}</td></tr>')
    return '<table class="code">' + "".join(rows) + "</table>"


def _side(title: str, parts: list[tuple[str, str, str]]) -> str:
    """A column: its title, then each (heading, source, matched line ranges)."""
    body = "".join(f"<h3>{html.escape(heading)}</h3>{_code(source, _lines(lines))}"
                   for heading, source, lines in parts)
    return f'<div class="side"><h2>{html.escape(title)}</h2>{body}</div>'


def _page(title: str, content: str) -> bytes:
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{content}</body></html>\n").encode()


def page_name(rank: int, match) -> str:
    """A file name for a pair's page: its rank, then the names with anything but letters,
    digits, `_`, `-` and `.` replaced (student ids are folder names a student may choose)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_",
                  f"{match.assignment}-{match.cell}-{match.student_id}-{match.source}")
    return f"{rank:04d}-{slug[:80]}.html"


def pair_page(match, source: str, other: list[tuple[str, str]]) -> bytes:
    """The page of one pair: the student's cell (`source`) left, what it matches right (`other`:
    (name, source) of the other student's or the solution's cell, or of each library file)."""
    title = f"{match.student_id} / {match.assignment} / {match.cell}"
    other_lines = match.source_lines.split("; ") if len(other) > 1 else [match.source_lines]
    right = [(name, text, lines) for (name, text), lines in zip(other, other_lines, strict=True)]
    summary = (f"<h1>{html.escape(title)}</h1><p>Similar to <b>{html.escape(match.kind)}</b> "
               f"{html.escape(match.source)} / {html.escape(match.source_cell)}: score "
               f"{match.score:.3f} (share of the smaller cell's fingerprints found in the "
               f"other), {match.shared} shared fingerprints. Marked: the lines the shared "
               f"fingerprints cover. A reason to look, not a verdict.</p>")
    sides = (_side(f"{match.student_id}: {match.cell}", [("", source, match.lines)])
             + _side(f"{match.source}: {match.source_cell}", right))
    return _page(title, summary + f'<div class="sides">{sides}</div>')


def write_reports(workdir: Path, matches: list, sources: Callable) -> list[str]:
    """Write DIR/similarity/<rank>-<names>.html for every match and DIR/similarity/index.html;
    returns each match's page as a path relative to DIR. `sources(match)` gives (the student's
    cell source, [(name, source) of what it matches])."""
    folder = Path(workdir) / FOLDER
    if lstat_kind(folder) not in ("dir", "missing"):
        raise ValueError(f"{folder}: not a plain folder")
    make_folders(Path(workdir), FOLDER)
    for old in folder.iterdir():  # the previous run's pages
        if old.suffix == ".html" and lstat_kind(old) == "file":
            old.unlink()
    names, rows = [], []
    for rank, match in enumerate(matches, start=1):
        name = page_name(rank, match)
        mine, other = sources(match)
        write_atomic(folder / name, pair_page(match, mine, other))
        names.append(f"{FOLDER}/{name}")
        cells = [html.escape(str(v)) for v in (match.student_id, match.assignment, match.cell,
                                                match.kind, match.source, match.source_cell)]
        rows.append(f'<tr><td><a href="{html.escape(name)}">{match.score:.3f}</a></td>'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in ("score", "student", "assignment", "cell", "kind",
                                                 "source", "source cell"))
    index = (f"<h1>Similar answer cells</h1><p>{len(matches)} pair(s), highest score first. "
             "Each opens the two cells side by side.</p>"
             f'<table class="pairs"><tr>{header}</tr>{"".join(rows)}</table>')
    write_atomic(folder / "index.html", _page("Similar answer cells", index))
    return names
