"""`python -m grader publish DEST`: the reader repository's tree, and nothing private in it.

The fast tests publish this repository into a temporary folder and check what is (not) there, and
plant solution, hidden-test and rubric text into a copy of the repository to see publish refuse
with nothing written. The slow test runs `make book` in the published tree, as a student would
(fresh .venv; the execution cache is copied from this repository's _build when there is one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from grader.cli import main
from grader.publish import STAMP, PublishError, find_leaks, publish, reader_repository

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = {"solutions", "grader", "tests", ".ci"}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("reader") / "deep-residual-learning"
    publish(ROOT, dest, log=lambda *_: None)
    return dest


def toy_root(tmp_path: Path) -> Path:
    """A copy of what publish reads: the public files, solutions/ and grader/checks/."""
    root = tmp_path / "instructor"
    for rel in ("book", "exercises", "src/resnet_course", "_ext", "solutions", "grader/checks"):
        shutil.copytree(ROOT / rel, root / rel,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for rel in ("_config.yml", "_toc.yml", "references.bib", "requirements.txt"):
        shutil.copy2(ROOT / rel, root / rel)
    return root


def test_reader_tree_holds_the_book_library_and_exercises(published):
    names = {p.name for p in published.iterdir()}
    assert {"book", "exercises", "src", "_ext", "_config.yml", "_toc.yml", "references.bib",
            "requirements.txt", "README.md", "Makefile", "pyproject.toml", STAMP} <= names
    assert not names & PRIVATE
    for page in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]:
        for chapter in page["chapters"]:
            suffix = ".ipynb" if chapter["file"].startswith("exercises/") else ".md"
            assert (published / f"{chapter['file']}{suffix}").is_file(), chapter
    assert (published / "src" / "resnet_course" / "models.py").is_file()
    assert not list(published.rglob("__pycache__"))


def test_reader_tree_has_no_solution_hidden_test_or_rubric_text(published):
    assert find_leaks(ROOT, published) == []
    every_file = [p for p in published.rglob("*") if p.is_file()]
    assert not [p for p in every_file if p.suffix == ".ipynb" and "exercises" not in p.parts]
    for path in every_file:
        if path.suffix == ".ipynb":  # only released notebooks: no nbgrader answer is kept
            for cell in nbformat.read(path, as_version=4).cells:
                assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source
    text = "\n".join(p.read_text(errors="ignore") for p in every_file)
    assert "grader.checks" not in text.replace("`grader.checks`", "")  # no hidden-test call
    assert "python -m grader" not in (published / "README.md").read_text()


def test_reader_files_point_at_the_reader_repository(published):
    url = reader_repository(ROOT)
    readme = (published / "README.md").read_text()
    assert f"git clone {url}\n" in readme and f"cd {url.rsplit('/', 1)[-1]}\n" in readme
    assert "{reader_repository" not in readme
    # the intro takes the same URL from _config.yml (a substitution, see _ext/editions.py)
    intro = (published / "book" / "intro.md").read_text()
    assert "git clone {{ reader_repository }}" in intro
    assert yaml.safe_load((published / "_config.yml").read_text())["repository"]["url"] == url
    makefile = (published / "Makefile").read_text()
    assert "book:" in makefile and "pytest" not in makefile and "grader" not in makefile
    assert "grader" not in (published / "pyproject.toml").read_text()


def _plant(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n```python\n{line}\n```\n")


def _secret_code_line(root: Path) -> str:
    nb = nbformat.read(root / "solutions/ex3_shortcuts/ex3_shortcuts.ipynb", as_version=4)
    answer = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                  and c.cell_type == "code" and "class BasicBlock" in c.source)
    inside = answer.split("### BEGIN SOLUTION", 1)[1].splitlines()
    return next(s.strip() for s in inside if len(s.strip()) >= 40 and "(" in s
                and s.strip() not in (root / "src/resnet_course/models.py").read_text())


def _model_answer(root: Path) -> str:
    for path in sorted((root / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
                return next(s.strip() for s in cell.source.splitlines() if len(s.strip()) > 40)
    raise AssertionError("no written answer with a model answer in solutions/")


def _check_line(root: Path) -> str:
    source = (root / "grader/checks/ex3.py").read_text()
    return next(s.strip() for s in source.splitlines()
                if len(s.strip()) >= 40 and not s.strip().startswith(("#", '"', "def ", "from")))


@pytest.mark.parametrize("what", ["solution line", "model answer", "hidden-test logic",
                                  "marker", "a copy of a checks file"])
def test_a_planted_leak_is_refused_and_nothing_is_written(tmp_path, what):
    root = toy_root(tmp_path)
    page = root / "book" / "identity.md"
    if what == "solution line":
        _plant(page, _secret_code_line(root))
    elif what == "model answer":
        page.write_text(page.read_text() + "\n" + _model_answer(root) + "\n")
    elif what == "hidden-test logic":
        _plant(page, _check_line(root))
    elif what == "marker":
        _plant(page, "### BEGIN HIDDEN TESTS")
    else:
        shutil.copy2(root / "grader/checks/common.py", root / "src/resnet_course/common.py")
    dest = tmp_path / "reader"
    with pytest.raises(PublishError, match="refusing to publish"):
        publish(root, dest, log=lambda *_: None)
    assert not dest.exists()


def test_a_stale_exercise_with_its_solution_is_refused(tmp_path):
    root = toy_root(tmp_path)
    released = root / "exercises/ex2_identity/ex2_identity.ipynb"
    solution = root / "solutions/ex2_identity/ex2_identity.ipynb"
    released.write_text(solution.read_text())
    with pytest.raises(PublishError, match="ex2_identity"):
        publish(root, tmp_path / "reader", log=lambda *_: None)


def test_dest_must_be_empty_or_an_earlier_publication(tmp_path):
    root = toy_root(tmp_path)
    foreign = tmp_path / "home"
    (foreign / "notes").mkdir(parents=True)
    with pytest.raises(PublishError, match="neither empty nor an earlier publication"):
        publish(root, foreign, log=lambda *_: None)
    assert (foreign / "notes").is_dir()

    dest = tmp_path / "reader"
    (dest / ".git").mkdir(parents=True)
    publish(root, dest, log=lambda *_: None)
    (dest / "stale.txt").write_text("from an older publication")
    publish(root, dest, log=lambda *_: None)  # again: replaced, .git kept
    assert (dest / ".git").is_dir() and not (dest / "stale.txt").exists()
    assert (dest / STAMP).is_file()


def test_dest_inside_what_is_published_is_refused(tmp_path):
    root = toy_root(tmp_path)
    for dest in (root, root / "book" / "reader", root / "src" / "reader"):
        with pytest.raises(PublishError, match="instructor repository or inside"):
            publish(root, dest, log=lambda *_: None)
    assert not (root / "book" / "reader").exists()


def test_cli_publish_exit_codes(tmp_path, capsys):
    root = toy_root(tmp_path)
    assert main(["publish", str(tmp_path / "ok"), "--root", str(root)]) == 0
    _plant(root / "book" / "intro.md", _check_line(root))
    assert main(["publish", str(tmp_path / "leak"), "--root", str(root)]) == 1
    assert "refusing to publish" in capsys.readouterr().err
    assert not (tmp_path / "leak").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("book-build")  # copies _build/.jupyter_cache: after test_book wrote it
def test_make_book_works_in_the_reader_tree(published):
    """A student's `make book` in a fresh clone: new .venv, the course edition, -W clean."""
    cache = ROOT / "_build" / ".jupyter_cache"
    if cache.is_dir():  # same notebooks, same cache keys: only rendering is left to do
        shutil.copytree(cache, published / "_build" / ".jupyter_cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if ".venv" not in p)
    for target in ("venv", "book"):  # pip's own warnings (local package index) stay in `venv`
        result = subprocess.run(["make", target], cwd=published, env=env, capture_output=True,
                                text=True, timeout=40 * 60)
        log = result.stdout + result.stderr
        assert result.returncode == 0, f"make {target} failed:\n{log[-6000:]}"
    assert "jupyter-book build . -W -n --keep-going" in log
    assert not [line for line in log.splitlines() if "WARNING:" in line], log[-6000:]
    html = published / "_build" / "html"
    assert (html / "index.html").is_file()
    assert "grader" not in json.dumps(sorted(p.name for p in html.iterdir()))
