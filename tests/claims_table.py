"""The figures each chapter's prose rests on, side by side for several builds (a Markdown table).

Every number a chapter states is glued by a build cell (``glue(name, value)``) and shown in the
prose with ``{glue:text}`name:fmt```. Each build keeps its executed chapters in its execution
cache: ``_build/.jupyter_cache`` for the default build, ``_build/.jupyter_cache-<VAR>-<value>...``
for a robustness build (``make book SEED_SET=1``, ``ISA=AVX2``, ``THREADS=t``: see
_ext/editions.py). This reads, for each cache given, the executed notebook that matches each
chapter's *current* source (a stale cached run is reported as missing, never shown), takes the
glued values out of its outputs (myst-nb writes them as display data with ``scrapbook`` metadata)
and prints one row per glued name the prose uses, formatted as the prose formats it, one column
per build; then each chapter's execution time in each build (``execution_seconds`` in the cache,
wall clock) and, where a chapter glues it as ``cpu_seconds``, its kernel's CPU time.

    python tests/claims_table.py                      # every cache under _build/
    python tests/claims_table.py --all                # also the glued values no prose shows
    python tests/claims_table.py _build/.jupyter_cache _build/.jupyter_cache-RESNET_COURSE_THREADS-2

`make claims` runs the first form. Used for the closing note of the issue "claims that hold on any
machine": one table shows whether the conclusions are the same in every build.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

from jupyter_cache import get_cache
from myst_nb.core.read import read_myst_markdown_notebook

ROOT = Path(__file__).resolve().parents[1]
GLUE_PREFIX = "application/papermill.record/"
# {glue:text}`name:fmt`, {glue}`name`, {glue:md}`name`, ... in a chapter's Markdown
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::([^`]*))?`")
CACHE_PREFIX = ".jupyter_cache"


def chapters() -> list[Path]:
    """The chapters of _toc.yml that execute code, in the book's order."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    paths = [ROOT / (line.split("file:", 1)[1].strip() + ".md")
             for line in toc.splitlines() if "file: book/" in line]  # fmt: skip
    return [p for p in paths if "{code-cell}" in p.read_text(encoding="utf-8")]


def prose_formats(text: str) -> dict[str, str]:
    """Glued name -> the format the prose first shows it with ('' for none), in text order."""
    found: dict[str, str] = {}
    for name, fmt in GLUE_ROLE.findall(text):
        found.setdefault(name.strip(), (fmt or "").strip())
    return found


def build_label(cache: Path) -> str:
    """'default' for _build/.jupyter_cache, else the variant settings of its name."""
    suffix = cache.name[len(CACHE_PREFIX):].lstrip("-")
    if not suffix:
        return "default"
    short = {"RESNET_COURSE_SEED_SET": "seed set", "RESNET_COURSE_THREADS": "threads",
             "ONEDNN_MAX_CPU_ISA": "ISA"}  # fmt: skip
    for var, word in short.items():
        suffix = suffix.replace(f"{var}-", f"{word} ")
    return suffix.replace("-", ", ")


def glued_values(notebook) -> dict[str, str]:
    """Glued name -> its text/plain value, from an executed notebook's outputs."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            prefix = meta.get("mime_prefix", "")
            text = output.get("data", {}).get(prefix + "text/plain")
            if text is not None:
                values[meta["name"]] = text
    return values


def executed(cache_path: Path, chapter: Path):
    """(glued values, execution seconds) of the cached run of the chapter's current source, or
    None when this cache has none (never run in this build, or run on an older source)."""
    cache = get_cache(str(cache_path))
    notebook = read_myst_markdown_notebook(chapter.read_text(encoding="utf-8"))
    try:
        record = cache.match_cache_notebook(notebook)
    except KeyError:
        return None
    bundle = cache.get_cache_bundle(record.pk)
    return glued_values(bundle.nb), (record.data or {}).get("execution_seconds")


def formatted(text: str | None, fmt: str) -> str:
    """The value as the prose shows it (myst-nb formats the evaluated text/plain)."""
    if text is None:
        return "–"
    if fmt:
        try:
            return format(ast.literal_eval(text), fmt)
        except (ValueError, SyntaxError, TypeError):
            pass
    return text.strip("'\"")


def table(caches: list[Path], include_all: bool) -> str:
    labels = [build_label(c) for c in caches]
    rows = ["| chapter | glued name | " + " | ".join(labels) + " |",
            "|---|---|" + "---|" * len(caches)]  # fmt: skip
    times = ["| chapter | " + " | ".join(labels) + " |", "|---|" + "---|" * len(caches)]
    for chapter in chapters():
        runs = [executed(c, chapter) for c in caches]
        formats = prose_formats(chapter.read_text(encoding="utf-8"))
        names = list(formats)
        if include_all:
            for run in runs:
                names += [n for n in (run[0] if run else {}) if n not in names]
        for name in names:
            cells = []
            for run in runs:
                text = run[0].get(name) if run else None
                # figures are glued as images: only their name is useful here
                if text is not None and text.startswith("<Figure"):
                    text = "figure"
                cells.append(formatted(text, formats.get(name, "")))
            rows.append(f"| {chapter.stem} | {name} | " + " | ".join(cells) + " |")
        seconds = []
        for run in runs:
            wall = f"{run[1]:.0f}" if run and run[1] is not None else "–"
            cpu = run[0].get("cpu_seconds") if run else None  # glued by some chapters
            seconds.append(wall + (f" ({float(cpu):.0f} CPU)" if cpu is not None else ""))
        times.append(f"| {chapter.stem} | " + " | ".join(seconds) + " |")
    missing = [f"- {label}: {chapter.stem}" for cache, label in zip(caches, labels, strict=True)
               for chapter in chapters() if executed(cache, chapter) is None]  # fmt: skip
    out = ["## Glued figures the prose states", "", *rows, "",
           "## Execution time per chapter (wall seconds from the cache; CPU seconds where the "
           "chapter glues its own process time)", "", *times]  # fmt: skip
    if missing:
        out += ["", "## Not executed on the current source (shown as –)", "", *missing]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("caches", nargs="*", type=Path,
                        help="execution caches (default: every _build/.jupyter_cache*)")
    parser.add_argument("--all", action="store_true",
                        help="also list glued values that no prose shows")
    args = parser.parse_args(argv)
    caches = args.caches or sorted((ROOT / "_build").glob(CACHE_PREFIX + "*"),
                                   key=lambda p: (p.name != CACHE_PREFIX, p.name))
    caches = [c for c in caches if (c / "global.db").exists()]
    if not caches:
        print("no execution cache found (run `make book` first)", file=sys.stderr)
        return 1
    sys.stdout.write(table(caches, args.all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
