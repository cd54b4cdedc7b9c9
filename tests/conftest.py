"""Shared pytest setup: a headless matplotlib backend, one torch thread, and the xdist groups."""

import matplotlib
import pytest

matplotlib.use("Agg")  # no display: figures are only drawn to memory or files

import torch  # noqa: E402

# One intra-op thread: the tests' tensors are small, and on a shared 2-core machine two threads
# that wait for each other made the training tests about ten times slower than one thread.
torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# Parallel runs (pytest-xdist, `-n auto --dist loadgroup`): which tests must share a worker
# ----------------------------------------------------------------------------------------------
# Test files that share something outside their own tmp_path, by the group they run in. Tests in
# one group run on one worker, one after the other; every other test goes to any idle worker.
SHARED_STATE_GROUPS = {
    # one book build: both (re)build _build/html and its execution cache _build/.jupyter_cache
    "test_book.py": "book-build",
    "test_site.py": "book-build",
}


def module_scoped_fixtures(item: pytest.Item) -> list[str]:
    """Fixtures that this item's own module defines with module (or wider) scope.

    Such a fixture (a toy course graded once, a built notebook) is set up once per worker that
    runs a test of the module; keeping the module on one worker keeps it set up once.
    """
    module_id = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)  # pytest keeps the item's fixture closure here
    names = []
    for name, defs in (info.name2fixturedefs.items() if info else []):
        if any(d.scope in ("module", "package", "session") and d.baseid == module_id
               for d in defs):  # fmt: skip
            names.append(name)
    return names


def xdist_group_of(item: pytest.Item) -> str | None:
    """The group an item runs in under `--dist loadgroup`; None: any worker."""
    if item.path.name in SHARED_STATE_GROUPS:
        return SHARED_STATE_GROUPS[item.path.name]
    if module_scoped_fixtures(item):
        return item.path.stem  # the whole module on one worker
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (on each worker)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = xdist_group_of(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
