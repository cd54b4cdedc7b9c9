"""Execute one chapter as the book build does (myst-nb's reader, a fresh python3 kernel, the
chapter's folder as working folder), in this process's environment. Used by test_book_variants.py
through a subprocess, so that the environment (seed set, oneDNN ISA) is the kernel's from start.

    python tests/chapter_run.py book/degradation.md
prints the cells' errors, if any, and exits 1 when a cell failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from myst_nb.core.read import read_myst_markdown_notebook
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

CELL_TIMEOUT_S = 30 * 60  # as _config.yml: generous, a busy machine must not fail a chapter


def run(path: Path) -> int:
    notebook = read_myst_markdown_notebook(path.read_text(encoding="utf-8"))
    start = time.monotonic()
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    try:
        client.execute()
    except CellExecutionError as error:
        print(f"{path}: a cell failed\n{error}")
        return 1
    print(f"{path}: executed in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
