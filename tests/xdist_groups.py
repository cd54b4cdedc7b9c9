"""Which tests share an xdist worker under `pytest -n auto --dist loadgroup` (make test, make
check). Tests in one group run on one worker, one after the other; every other test goes to any
idle worker. Imported by tests/conftest.py for its hook.
"""

import pytest

# Test files that share something outside their own tmp_path, by the group they run in. Tests in
# one group run on one worker, one after the other; every other test goes to any idle worker.
SHARED_STATE_GROUPS = {
    # one book build: both (re)build _build/html and its execution cache _build/.jupyter_cache
    "test_book.py": "book-build",
    "test_editions.py": "book-build",  # its builds reuse that cache: never while it is written
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


def tag_node_id(item: pytest.Item, group: str) -> None:
    """Append ``@group`` to the item's node id: the suffix xdist's loadgroup scheduler reads.

    xdist 3.8 appends it by setting ``item._nodeid``, which pytest 9.2 no longer reads (it keeps
    the id as a structured ``item._id``), so every group was silently spread over the workers.
    Where ``_nodeid`` is still used, xdist does it itself.
    """
    if hasattr(item, "_nodeid") or not hasattr(item, "_id"):
        return
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (on each worker)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = xdist_group_of(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))
    if getattr(config.option, "loadgroup", False):  # set on xdist workers under loadgroup
        for item in items:
            groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                             for m in item.iter_markers("xdist_group")})  # fmt: skip
            if groups:
                tag_node_id(item, "_".join(groups))
