"""Execute the book's uncached notebooks in parallel, before Sphinx reads them one by one.

With `execute_notebooks: cache`, myst-nb executes each chapter while Sphinx reads it, so a cold
build runs the chapters one after another on one core. This extension runs first: on
`env-before-read-docs` it finds the notebooks that the execution cache has no match for, executes
them in a pool of processes (one kernel each; the chapters pin PyTorch to one thread) and stores
the executed notebooks in the same cache, the way myst-nb itself does (same notebook reader, same
cache key, same `execution_seconds` record). Sphinx then reads every chapter from the cache.

It only saves time: a notebook that fails here is left out of the cache, and myst-nb executes it
again while reading and reports the error as usual. `BOOK_JOBS` sets the number of processes
(default: the CPUs this process may use; 1 turns the extension off).
"""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path, PurePosixPath

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from myst_nb.core.nb_to_tokens import nb_node_to_dict
from myst_nb.core.read import create_nb_reader
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)
JOBS_VAR = "BOOK_JOBS"


def jobs() -> int:
    """Processes to execute with: BOOK_JOBS, else the CPUs this process may run on."""
    value = os.environ.get(JOBS_VAR, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{JOBS_VAR} must be a whole number >= 1, not {value!r}")
        return int(value)
    return len(os.sched_getaffinity(0))


def _notebook(env: BuildEnvironment, docname: str):
    """(path, notebook, read format, page config) of a document that myst-nb would execute into
    the cache; None otherwise."""
    nb_config = env.mystnb_config
    path = Path(env.doc2path(docname))
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
    if reader is None:  # plain Markdown: nothing to execute
        return None
    posix = PurePosixPath(path.as_posix())
    if any(posix.match(p) for p in nb_config.execution_excludepatterns):
        return None
    notebook = reader.read(text)
    if nb_config.metadata_key in notebook.metadata:  # per-page settings, as myst-nb reads them
        overrides = nb_node_to_dict(notebook.metadata[nb_config.metadata_key])
        overrides.pop("output_folder", None)
        nb_config = nb_config.copy(**overrides)
        if nb_config.execution_mode != "cache":
            return None
    kernel = notebook.metadata.get("kernelspec", {}).get("name")  # aliases change the cache key
    for pattern, alias in (nb_config.kernel_rgx_aliases or {}).items():
        if kernel is not None and re.fullmatch(pattern, kernel):
            notebook.metadata["kernelspec"]["name"] = alias
            break
    return path, notebook, reader.read_fmt, nb_config


def _execute(path: str, notebook: dict, timeout: int | None, allow_errors: bool,
             in_temp: bool) -> tuple[dict, float, str | None]:
    """Run in a pool process: (executed notebook, seconds, error text or None)."""
    nb = nbformat.from_dict(notebook)
    with tempfile.TemporaryDirectory() as temp:
        cwd = temp if in_temp else str(Path(path).parent)  # as myst-nb: the page's folder
        result = single_nb_execution(nb, cwd=cwd, timeout=timeout, allow_errors=allow_errors,
                                     meta_override=True)  # fmt: skip
    return nb, result.time, (result.exc_string if result.err is not None else None)


def _result(future) -> tuple[dict | None, float, str | None]:
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001 - a broken pool process: myst-nb executes it instead
        return None, 0.0, f"{type(e).__name__}: {e}"


def execute_uncached(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    nb_config = env.mystnb_config
    processes = jobs()
    if nb_config.execution_mode != "cache" or processes < 2:
        return
    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    pending = []
    for docname in sorted(docnames):
        found = _notebook(env, docname)
        if found is None:
            continue
        try:
            cache.match_cache_notebook(found[1])
        except KeyError:
            pending.append(found)
    if len(pending) < 2:
        return
    logger.info(f"executing {len(pending)} notebooks on {min(processes, len(pending))} processes")
    args = [(str(p), nb, page.execution_timeout, page.execution_allow_errors,
             page.execution_in_temp) for p, nb, _, page in pending]  # fmt: skip
    with ProcessPoolExecutor(min(processes, len(pending)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_execute, *a) for a in args]
        results = [_result(f) for f in futures]
    for (path, _, read_fmt, _), (executed, seconds, error) in zip(pending, results, strict=True):
        if error is not None:  # myst-nb executes it again and reports the error
            logger.info(f"{path}: execution failed here; left to myst-nb")
            continue
        record = cache.add_nb_to_project(str(path), read_data=read_fmt)
        cache.cache_notebook_bundle(
            CacheBundleIn(executed, record.uri, data={"execution_seconds": seconds}),
            check_validity=False, overwrite=True)  # fmt: skip


def setup(app: Sphinx) -> dict:
    app.setup_extension("myst_nb")  # its configuration (env.mystnb_config) comes first
    app.connect("env-before-read-docs", execute_uncached)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
