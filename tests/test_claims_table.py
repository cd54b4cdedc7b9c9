"""tests/claims_table.py: the glued figures of several builds' caches in one Markdown table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from myst_nb.core.read import read_myst_markdown_notebook

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("claims_table", ROOT / "tests" / "claims_table.py")
claims_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(claims_table)


def _glue_output(name: str, text: str, display: bool = False) -> dict:
    prefix = "" if display else claims_table.GLUE_PREFIX
    return nbformat.v4.new_output(
        "display_data", data={prefix + "text/plain": text},
        metadata={"scrapbook": {"name": name, "mime_prefix": prefix}})  # fmt: skip


def test_prose_formats_first_format_wins():
    text = ("error {glue:text}`err_plain:.1f` %, {glue}`fig_a` and {glue:text}`k90:d`; "
            "again {glue:text}`err_plain:.3f`")  # fmt: skip
    assert claims_table.prose_formats(text) == {"err_plain": ".1f", "fig_a": "", "k90": "d"}


def test_build_labels():
    label = claims_table.build_label
    assert label(Path("_build/.jupyter_cache")) == "default"
    assert label(Path("_build/.jupyter_cache-RESNET_COURSE_SEED_SET-1")) == "seed set 1"
    assert (label(Path("_build/.jupyter_cache-RESNET_COURSE_THREADS-2-ONEDNN_MAX_CPU_ISA-AVX2"))
            == "threads 2, ISA AVX2")  # fmt: skip


def test_formatted_as_the_prose_shows_it():
    assert claims_table.formatted("12.3456", ".1f") == "12.3"
    assert claims_table.formatted("6", "d") == "6"
    assert claims_table.formatted("'text'", "") == "text"
    assert claims_table.formatted(None, ".1f") == "–"


def test_reads_the_cached_run_of_the_current_source_only(tmp_path):
    chapter = ROOT / "book" / "inside_resnets.md"
    notebook = read_myst_markdown_notebook(chapter.read_text(encoding="utf-8"))
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    cell.outputs = [_glue_output("grad_k90", "5"), _glue_output("shown", "1.5", display=True)]
    cache_path = tmp_path / ".jupyter_cache-RESNET_COURSE_SEED_SET-1"
    get_cache(str(cache_path)).cache_notebook_bundle(
        CacheBundleIn(notebook, str(chapter), data={"execution_seconds": 61.4}),
        check_validity=False, overwrite=True)  # fmt: skip
    values, seconds = claims_table.executed(cache_path, chapter)
    assert values == {"grad_k90": "5", "shown": "1.5"} and seconds == 61.4

    out = claims_table.table([cache_path], include_all=False)
    assert "| inside_resnets | grad_k90 | 5 |" in out
    assert "| inside_resnets | 61 |" in out
    # the other chapters never ran in this cache: listed as not executed, their cells "–"
    assert "- seed set 1: degradation" in out
