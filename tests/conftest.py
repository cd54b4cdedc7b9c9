"""Shared pytest setup: a headless matplotlib backend, one torch thread, the xdist groups, and
what many test files need alike.

- `REPO` / the `repo_root` fixture: the repository's root.
- `TOY` / the `toy_course` fixture: the toy course (tests/fixtures/toy: solutions/toy/toy.ipynb),
  copied into a temporary folder (`copy_toy` for a copy elsewhere); `released_toy` releases a
  copy (exercises/ written, as `python -m grader release` does).
- `graded_toy_course`: the toy course released, one solved hand-in and its autograde DIR (with
  the sandbox when there is one), graded once per session; copy its folders before changing them.
- the `needs_sandbox` marker: the test is skipped where grader.isolation.sandbox cannot isolate a
  kernel;
  `no_sandbox_args()` for autogrades of the course's own hand-ins that run either way.
- `read_csv` / the `read_csv` fixture: a CSV file's rows as dicts (its header the keys).

Test modules import the constants and helpers (`from conftest import REPO, copy_toy`): tests/
is on sys.path, as for tests/xdist_groups.py.
"""

import csv
import shutil
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # no display: figures are only drawn to memory or files

import torch  # noqa: E402

# One intra-op thread: the tests' tensors are small, and on a shared 2-core machine two threads
# that wait for each other made the training tests about ten times slower than one thread.
torch.set_num_threads(1)

# which tests share an xdist worker under `-n auto --dist loadgroup`: see tests/xdist_groups.py
from xdist_groups import pytest_collection_modifyitems as xdist_group_items  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "fixtures" / "toy"


def copy_toy(dest: Path) -> Path:
    """A copy of the toy course at `dest` (which must not exist yet); returns `dest`."""
    shutil.copytree(TOY, dest)
    return dest


def released_toy(dest: Path) -> Path:
    """A copy of the toy course at `dest` with its exercises/ released; returns `dest`."""
    from grader.commands.cli import main

    copy_toy(dest)
    assert main(["release", "--root", str(dest)]) == 0
    return dest


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line, as dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sandbox_problem() -> str | None:
    """Why grader.isolation.sandbox cannot isolate a kernel here, or None when it can."""
    from grader.isolation.sandbox import sandbox_available

    ok, why = sandbox_available()
    return None if ok else why


def no_sandbox_args() -> list[str]:
    """`--no-sandbox` where the sandbox cannot run (for the course's own toy hand-ins only:
    they are safe without isolation), else nothing."""
    return [] if sandbox_problem() is None else ["--no-sandbox"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_sandbox: skipped where "
                                       "grader.isolation.sandbox cannot isolate a kernel "
                                       "(no bubblewrap, no user namespaces)")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (on each worker)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("needs_sandbox") for item in items):
        why = sandbox_problem()  # asked once per session, and only when a test needs it
        if why is not None:
            skip = pytest.mark.skip(reason=f"sandbox unavailable: {why}")
            for item in items:
                if item.get_closest_marker("needs_sandbox"):
                    item.add_marker(skip)
    xdist_group_items(config, items)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def toy_course(tmp_path: Path) -> Path:
    """A fresh copy of the toy course (solutions/ only) in this test's temporary folder."""
    return copy_toy(tmp_path / "course")


@pytest.fixture(scope="session")
def graded_toy_course(tmp_path_factory) -> dict[str, Path]:
    """{"root", "submissions", "work"}: the toy course released, ann's hand-in (the solution's
    code in the released notebook) and the DIR `python -m grader autograde` wrote for it."""
    import nbformat

    from grader.bridge import cell_roles
    from grader.bridge.course import Roots
    from grader.commands.autograde import autograde

    tmp = tmp_path_factory.mktemp("graded-toy")
    root = released_toy(tmp / "course")
    solved = {cell_roles.grade_id(c): c.source for c in
              nbformat.read(root / "solutions" / "toy" / "toy.ipynb", as_version=4).cells}
    nb = nbformat.read(root / "exercises" / "toy" / "toy.ipynb", as_version=4)
    for cell in nb.cells:
        if cell_roles.is_solution(cell) and cell.cell_type == "code":
            cell.source = "\n".join(line for line in solved[cell_roles.grade_id(cell)]
                                    .splitlines() if "### " not in line)
    folder = tmp / "submissions" / "ann" / "toy"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "toy.ipynb")
    work = tmp / "work"
    outcomes = autograde(tmp / "submissions", work, Roots.from_root(root),
                         sandbox=sandbox_problem() is None, similarity=False,
                         log=lambda line: None)
    assert all(o.graded for o in outcomes), outcomes
    return {"root": root, "submissions": tmp / "submissions", "work": work}


@pytest.fixture(name="read_csv")
def read_csv_fixture():
    return read_csv
