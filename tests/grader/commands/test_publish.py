"""`python -m grader publish DEST`: the course site and the starter tree hold no answers, the
self-study tree only with its flag, and publish never deletes a file it did not write.

The fast tests publish this repository with a small stand-in for the built site (`fake_site`:
an index page and the chapters' `_sources/`, as `make book` leaves them) into temporary
folders, plant solution text and graded implementations into a copy of the repository to see
publish refuse with nothing written, and publish twice into a folder with a `.venv`, a LICENSE
and CI files added by hand. The slow tests use the real build (_build/html,
tests/book/test_book.py):
every chapter's launch buttons must point at a notebook of the published self-study tree, and
`make book` must work in that tree as a reader's clone (fresh .venv).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat
import pytest
import yaml
from conftest import REPO as ROOT

from grader.commands.cli import main
from grader.commands.environment import imported_modules
from grader.commands.owned_tree import MANIFEST
from grader.commands.publish import (
    OLD_STAMP,
    PublishError,
    chapters,
    find_leaks,
    publish,
    reader_repository,
    starter_repository,
)
from grader.integrity.answer_scan import find_answers
from grader.integrity.graded import graded_definitions

PRIVATE = {"solutions", "grader", "tests", ".ci"}
DEFS = graded_definitions(ROOT)
QUIET = {"log": lambda *_: None}


def fake_site(root: Path, out: Path) -> Path:
    """What `make book` leaves in _build/html, as far as publish reads it: an index page, a
    chapter page with ungraded library code, and the chapters' sources."""
    out.mkdir(parents=True)
    (out / "index.html").write_text("<html><body><a href='book/intro.html'>book</a></body></html>")
    code = (root / "src/resnet_course/train.py").read_text().split("def set_seed", 1)[1][:400]
    (out / "book").mkdir()
    (out / "book" / "identity.html").write_text(f"<pre>def set_seed{code}</pre>")
    for name in chapters(root):
        (out / "_sources" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f"{name}.md", out / "_sources" / f"{name}.md")
    return out


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("publish")
    dest = tmp / "out"
    publish(ROOT, dest, site=fake_site(ROOT, tmp / "html"), self_study=True, **QUIET)
    return dest


def toy_root(tmp_path: Path) -> Path:
    """A copy of what publish reads: the public files, solutions/ and grader/checks/."""
    root = tmp_path / "instructor"
    for rel in ("book", "exercises", "src/resnet_course", "_ext", "solutions", "grader/checks"):
        shutil.copytree(ROOT / rel, root / rel,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for rel in ("_config.yml", "_toc.yml", "references.bib", "requirements.txt"):
        shutil.copy2(ROOT / rel, root / rel)
    fake_site(root, root / "_build" / "html")
    return root


def files(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}


# ---- what each output holds -------------------------------------------------------------

def test_default_publish_writes_the_site_and_the_starter_tree_only(tmp_path):
    root = toy_root(tmp_path)
    dest = tmp_path / "out"
    assert main(["publish", str(dest), "--root", str(root)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["site", "starter"]
    assert (dest / "site" / "index.html").is_file()


def test_starter_tree_holds_the_exercises_and_their_environment_only(published):
    starter = published / "starter"
    ids = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    licences = {name for name in ("LICENSE", "LICENSE-CONTENT") if (ROOT / name).is_file()}
    assert files(starter) == {*(f"exercises/{i}/{i}.ipynb" for i in ids), "requirements.txt",
                              "Makefile", "README.md", ".gitignore", MANIFEST, *licences}
    for i in ids:  # the released notebooks, unchanged
        assert (starter / f"exercises/{i}/{i}.ipynb").read_bytes() == \
            (ROOT / f"exercises/{i}/{i}.ipynb").read_bytes()
    # every module the notebooks import is the standard library's or pinned in requirements.txt
    pins = {re.split(r"[=<>]", line)[0].lower().replace("_", "-")
            for line in (starter / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")}
    from importlib import metadata
    provided = metadata.packages_distributions()
    sources = [c.source for p in starter.glob("exercises/*/*.ipynb")
               for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code"]
    for module in imported_modules(sources) - set(sys.stdlib_module_names):
        assert {d.lower().replace("_", "-") for d in provided[module]} & pins, module
    assert {"torch", "jupyterlab", "ipykernel"} <= pins
    assert not pins & {"nbgrader", "jupyter-book", "pytest", "resnet-course"}
    makefile = (starter / "Makefile").read_text()
    assert "lab:" in makefile and "requirements.txt" in makefile and "grader" not in makefile
    dry_run = subprocess.run(["make", "-n", "lab"], cwd=starter, capture_output=True, text=True)
    assert dry_run.returncode == 0, dry_run.stderr
    assert "-m pip install --quiet --no-compile -r requirements.txt" in dry_run.stdout
    assert "/jupyter lab exercises" in dry_run.stdout
    readme = (starter / "README.md").read_text()
    assert "{" not in readme and "ex5_gpu_training" in readme and "python -m grader" not in readme
    assert f"git clone {starter_repository(ROOT)}\n" in readme


def test_no_output_but_self_study_holds_a_graded_implementation(published):
    """The acceptance check of the issue: no def/class of a graded object (with a body) and no
    copy of one's implementation in any file of the site or the starter tree."""
    names = {d.name for d in DEFS}
    assert {"ResidualBlock", "BasicBlock", "resnet_cifar", "pick_device", "train_one_epoch",
            "evaluate", "plain_mlp", "count_parameters"} <= names
    for part in ("site", "starter"):
        assert find_answers(published / part, DEFS) == [], part
        assert not list((published / part).rglob("*.py")), part
    # the check can fail: the self-study tree holds the library, answers included
    found = {a.name for a in find_answers(published / "self-study", DEFS)}
    assert {"BasicBlock", "train_one_epoch", "pick_device", "residual_mlp"} <= found


def test_no_output_has_solution_hidden_test_or_rubric_text(published):
    for part in ("site", "starter", "self-study"):
        tree = published / part
        assert find_leaks(ROOT, tree) == [], part
        assert not {p.relative_to(tree).parts[0] for p in tree.iterdir()} & PRIVATE
        for path in tree.glob("exercises/*/*.ipynb"):
            for cell in nbformat.read(path, as_version=4).cells:
                assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source


def test_self_study_tree_is_the_full_source_with_paired_notebooks(published):
    tree = published / "self-study"
    names = {p.name for p in tree.iterdir()}
    assert {"book", "exercises", "src", "_ext", "_config.yml", "_toc.yml", "references.bib",
            "requirements.txt", "README.md", "Makefile", "pyproject.toml", MANIFEST} <= names
    assert (tree / "src" / "resnet_course" / "models.py").is_file()
    assert not list(tree.rglob("__pycache__"))
    url = reader_repository(ROOT)
    readme = (tree / "README.md").read_text()
    assert f"git clone {url}\n" in readme and "contains the answers" in readme
    assert "{reader_repository" not in readme and "{licences}" not in readme
    for name in chapters(ROOT):
        notebook = nbformat.read(tree / f"{name}.ipynb", as_version=4)
        setup, *rest = notebook.cells
        assert "launch-setup" in setup.metadata["tags"] and f'"{url}"' in setup.source
        packages = next(ast.literal_eval(node.value) for node in ast.parse(setup.source).body
                        if isinstance(node, ast.Assign) and node.targets[0].id == "PACKAGES")
        assert packages["torch"] == "torch==2.13.0" and packages["myst_nb"].startswith("myst-nb==")
        code = [c.source for c in rest if c.cell_type == "code"]
        assert any("resnet_course" in c for c in code), name
    makefile = (tree / "Makefile").read_text()
    assert "book:" in makefile and "pytest" not in makefile and "grader" not in makefile


def test_the_setup_cell_makes_the_library_importable_in_a_clone(published, tmp_path):
    """In a clone (Binder, a reader's Jupyter) the chapter notebook's first cell finds the
    library in ../src without installing anything (this venv's own install is hidden)."""
    clone = tmp_path / "clone"
    shutil.copytree(published / "self-study", clone)
    name = chapters(ROOT)[1]
    setup = nbformat.read(clone / f"{name}.ipynb", as_version=4).cells[0].source
    script = ("import sys\n"
              "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
              "getattr(f, '__module__', '')]\n"
              "sys.path[:] = [p for p in sys.path if not p.endswith('src')]\n"
              "import importlib.util\n"
              "assert importlib.util.find_spec('resnet_course') is None\n"
              + setup + "\nimport resnet_course.models\nprint(resnet_course.models.__file__)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=clone / "book",
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(result.stdout.strip()) == clone / "src" / "resnet_course" / "models.py"


# ---- licences ------------------------------------------------------------------------------

def test_licences_are_copied_into_every_output_when_present(tmp_path):
    root = toy_root(tmp_path)
    (root / "LICENSE").write_text("MIT License\n")
    (root / "LICENSE-CONTENT").write_text("CC BY 4.0\n")
    logs: list[str] = []
    publish(root, tmp_path / "out", self_study=True, log=logs.append)
    for part in ("site", "starter", "self-study"):
        assert (tmp_path / "out" / part / "LICENSE").read_text() == "MIT License\n"
        assert (tmp_path / "out" / part / "LICENSE-CONTENT").read_text() == "CC BY 4.0\n"
    for part in ("starter", "self-study"):
        readme = (tmp_path / "out" / part / "README.md").read_text()
        assert "`LICENSE` (the code) and `LICENSE-CONTENT` (the text and figures)" in readme
    assert any("licences copied into every output: LICENSE, LICENSE-CONTENT" in s for s in logs)
    # without them: none copied, and publish says so
    logs.clear()
    (root / "LICENSE").unlink()
    (root / "LICENSE-CONTENT").unlink()
    publish(root, tmp_path / "plain", log=logs.append)
    assert not (tmp_path / "plain" / "starter" / "LICENSE").exists()
    assert "Licences" not in (tmp_path / "plain" / "starter" / "README.md").read_text()
    assert any("licences copied into every output: none" in s for s in logs)


# ---- what publish refuses ----------------------------------------------------------------

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


def _library_source(name: str) -> str:
    return next(d.source for d in DEFS if d.name == name and d.origin.startswith("resnet_"))


def _renamed(source: str, old: str, new: str) -> str:
    return source.replace(old, new)


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
    fake_site(root, root / "_build" / "html2")  # a build of the changed chapter
    dest = tmp_path / "reader"
    with pytest.raises(PublishError, match="refusing to publish"):  # (the site's _sources/)
        publish(root, dest, site=root / "_build" / "html2", self_study=what.startswith("a copy"),
                **QUIET)
    assert not dest.exists()


@pytest.mark.parametrize("where", ["site page", "starter notebook", "site source"])
def test_a_graded_implementation_is_refused_even_renamed(tmp_path, where):
    root = toy_root(tmp_path)
    site = root / "_build" / "html"
    block = _renamed(_library_source("BasicBlock"), "BasicBlock", "TwoConvBlock")
    if where == "site page":
        (site / "book" / "identity.html").write_text(f"<pre>{block}</pre>")
    elif where == "site source":  # the chapter's own code defines one (a `def evaluate`)
        (site / "_sources" / "book" / "notes.md").write_text(
            "```python\n" + _library_source("evaluate") + "\n```\n")
    else:
        path = root / "exercises/ex1_degradation/ex1_degradation.ipynb"
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(block))
        nbformat.write(notebook, path)
    dest = tmp_path / "out"
    with pytest.raises(PublishError, match="refusing to publish") as refused:
        publish(root, dest, **QUIET)
    assert "BasicBlock" in str(refused.value) or "evaluate" in str(refused.value)
    assert not dest.exists()


def test_a_stale_exercise_with_its_solution_is_refused(tmp_path):
    root = toy_root(tmp_path)
    released = root / "exercises/ex2_identity/ex2_identity.ipynb"
    solution = root / "solutions/ex2_identity/ex2_identity.ipynb"
    released.write_text(solution.read_text())
    with pytest.raises(PublishError, match="ex2_identity"):
        publish(root, tmp_path / "reader", **QUIET)


def test_a_missing_or_stale_site_is_refused(tmp_path):
    root = toy_root(tmp_path)
    with pytest.raises(PublishError, match="run `make book` first"):
        publish(root, tmp_path / "out", site=tmp_path / "nothing", **QUIET)
    _plant(root / "book" / "identity.md", "x = 1")
    with pytest.raises(PublishError, match="older than book/identity.md"):
        publish(root, tmp_path / "out", **QUIET)
    assert not (tmp_path / "out").exists()


# ---- publish never deletes what it did not write ------------------------------------------

def test_a_second_publish_keeps_venv_licence_and_ci_files(tmp_path):
    root = toy_root(tmp_path)
    dest = tmp_path / "out"
    (dest / "starter" / ".git").mkdir(parents=True)  # a clone of the starter repository
    publish(root, dest, self_study=True, **QUIET)
    mine = {"starter/.venv/bin/python": "#!venv", "starter/LICENSE": "my licence",
            "starter/.github/workflows/ci.yml": "on: push", "self-study/.venv/pyvenv.cfg": "x",
            "self-study/LICENSE": "mine too", "site/CNAME": "course.example.org",
            "notes.txt": "DEST itself"}
    for rel, text in mine.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    # the repository changes: a chapter less in the site, an exercise notebook renamed
    (root / "_build/html/book/identity.html").unlink()
    before = files(dest / "starter")
    publish(root, dest, self_study=True, **QUIET)
    for rel, text in mine.items():
        assert (dest / rel).read_text() == text, rel
    assert (dest / "starter" / ".git").is_dir()
    assert not (dest / "site/book/identity.html").exists()  # ours, no longer published
    assert files(dest / "starter") == before
    owned = (dest / "starter" / MANIFEST).read_text()
    assert "exercises/ex1_degradation/ex1_degradation.ipynb\n" in owned
    assert "LICENSE" not in owned and ".venv" not in owned


def test_a_file_publish_did_not_write_is_never_overwritten(tmp_path):
    root = toy_root(tmp_path)
    dest = tmp_path / "out"
    publish(root, dest, **QUIET)
    (dest / "starter" / "LICENSE").write_text("added by hand")
    (root / "LICENSE").write_text("MIT License\n")  # now publish would write one too
    with pytest.raises(PublishError, match="did not write and would replace: LICENSE"):
        publish(root, dest, **QUIET)
    assert (dest / "starter" / "LICENSE").read_text() == "added by hand"
    assert not (dest / "site" / "LICENSE").exists()  # nothing written anywhere


def test_dest_must_be_new_empty_or_an_earlier_publication(tmp_path):
    root = toy_root(tmp_path)
    foreign = tmp_path / "home"
    (foreign / "notes").mkdir(parents=True)
    with pytest.raises(PublishError, match="neither empty nor an earlier publication"):
        publish(root, foreign, **QUIET)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes"]
    # a part folder somebody else filled
    (tmp_path / "mixed" / "starter" / "x").mkdir(parents=True)
    (tmp_path / "mixed" / "site").mkdir()
    (tmp_path / "mixed" / "site" / MANIFEST).write_text("")
    with pytest.raises(PublishError, match="was not written by publish"):
        publish(root, tmp_path / "mixed", **QUIET)
    # the layout of earlier versions of this tool (the whole tree in DEST)
    old = tmp_path / "old"
    (old / "book").mkdir(parents=True)
    (old / OLD_STAMP).write_text("")
    with pytest.raises(PublishError, match="earlier version of this tool"):
        publish(root, old, **QUIET)
    assert (old / "book").is_dir()


def test_a_manifest_cannot_make_publish_delete_outside_its_folder(tmp_path):
    root = toy_root(tmp_path)
    dest = tmp_path / "out"
    publish(root, dest, **QUIET)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    with (dest / "starter" / MANIFEST).open("a") as manifest:
        manifest.write("../../victim.txt\n/etc/hostname\n")
    publish(root, dest, **QUIET)
    assert victim.read_text() == "keep me"


def test_dest_inside_what_is_published_is_refused(tmp_path):
    root = toy_root(tmp_path)
    for dest in (root, root / "book" / "reader", root / "src" / "reader"):
        with pytest.raises(PublishError, match="instructor repository or inside"):
            publish(root, dest, **QUIET)
    assert not (root / "book" / "reader").exists()


def test_cli_publish_exit_codes_and_self_study_warning(tmp_path, capsys):
    root = toy_root(tmp_path)
    assert main(["publish", str(tmp_path / "ok"), "--root", str(root), "--self-study"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: DEST/self-study reveals" in out and "BasicBlock" in out
    _plant(root / "book" / "intro.md", _check_line(root))
    fake_site(root, tmp_path / "html")
    assert main(["publish", str(tmp_path / "leak"), "--root", str(root), "--self-study",
                 "--site", str(tmp_path / "html")]) == 1
    assert "refusing to publish" in capsys.readouterr().err
    assert not (tmp_path / "leak").exists()


# ---- launch buttons (_ext/launch.py) ---------------------------------------------------------

def _launch_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch_ext", ROOT / "_ext" / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _theme_buttons(repository: str, path: str) -> list[dict]:
    """The launch buttons sphinx-book-theme makes for `path` of `repository` (its URL forms)."""
    org_repo = "/".join(repository.split("/")[-2:])
    name = org_repo.split("/")[1]
    return [{"type": "group", "buttons": [
        {"url": f"https://mybinder.org/v2/gh/{org_repo}/main?urlpath=lab/tree/{path}"},
        {"url": "https://hub.example.org/hub/user-redirect/git-pull?repo=https%3A//github.com/"
                f"{org_repo}&urlpath=lab/tree/{name}/{path}&branch=main"},
        {"url": f"https://colab.research.google.com/github/{org_repo}/blob/main/{path}"}]}]


@pytest.mark.parametrize("page", ["book/identity", "exercises/ex2_identity/ex2_identity"])
def test_launch_buttons_open_the_paired_notebook_or_the_starter_repository(page):
    """Chapters: book/<chapter>.md -> .ipynb in repository.url; exercises: the same notebook
    in starter_repository (sphinx-book-theme's three URL forms, rewritten by _ext/launch.py)."""
    launch = _launch_extension()
    reader = "https://github.com/org/course"
    starter = "https://github.com/org/course-exercises"
    source = ".md" if page.startswith("book/") else ".ipynb"
    context = {"sourcename": page + source, "header_buttons": _theme_buttons(reader, page + source)}
    if source == ".md":
        context["ipynb_source"] = page + ".ipynb"

    class App:
        class config:  # noqa: N801 (stands in for sphinx's Config)
            starter_repository = starter
            html_theme_options = {"repository_url": reader}

    launch.point_at_paired_notebook(App, page, "page.html", context, None)
    urls = [b["url"] for b in context["header_buttons"][0]["buttons"]]
    repository = reader if source == ".md" else starter
    assert [launch_target(u, repository) for u in urls] == [page + ".ipynb"] * 3, urls
    assert not any(".md" in u for u in urls)


# ---- the real build -------------------------------------------------------------------------

class _LaunchLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href") or ""
        if tag == "a" and any(h in href for h in ("mybinder.org", "colab.research.google.com",
                                                  "git-pull?")):
            self.hrefs.append(href)


def launch_target(href: str, repository: str) -> str:
    """The repository path a Binder, Colab or JupyterHub launch link opens."""
    org_repo = "/".join(repository.rstrip("/").split("/")[-2:])
    url = urlparse(href)
    if "colab" in url.netloc:
        prefix = f"/github/{org_repo}/blob/"
        assert url.path.startswith(prefix), href
        return url.path.removeprefix(prefix).split("/", 1)[1]
    query = parse_qs(url.query)
    if "git-pull" in url.path:
        assert query["repo"] == [repository], href
        return query["urlpath"][0].split("/", 3)[3]  # lab/tree/<repo name>/<path>
    assert url.path.startswith(f"/v2/gh/{org_repo}/"), href
    return query["urlpath"][0].split("/", 2)[2]  # lab/tree/<path>


@pytest.mark.slow
@pytest.mark.xdist_group("book-build")  # reads _build/html: after test_book built it
def test_every_chapter_launches_a_notebook_of_the_published_tree(tmp_path):
    from site_tools import ensure_built

    html = ensure_built()
    dest = tmp_path / "out"
    publish(ROOT, dest, site=html, self_study=True, **QUIET)
    for name in chapters(ROOT) + [f"exercises/{i}/{i}" for i in
                                  sorted(p.name for p in (ROOT / "exercises").iterdir())]:
        # chapters launch from the self-study tree, exercises from the starter tree
        tree, repository = dest / "self-study", reader_repository(ROOT)
        if name.startswith("exercises/") and starter_repository(ROOT):
            tree, repository = dest / "starter", starter_repository(ROOT)
        parser = _LaunchLinks()
        parser.feed((dest / "site" / f"{name}.html").read_text())
        assert len(parser.hrefs) >= 3, f"{name}: launch buttons {parser.hrefs}"
        for href in parser.hrefs:
            target = launch_target(href, repository)
            assert target == f"{name}.ipynb", (name, href)
            notebook = nbformat.read(tree / target, as_version=4)
            assert notebook.cells, target
        if name.startswith("book/"):  # the paired notebook: setup cell, then the chapter
            notebook = nbformat.read(tree / f"{name}.ipynb", as_version=4)
            assert "launch-setup" in notebook.cells[0].metadata["tags"]
            source = (ROOT / f"{name}.md").read_text()
            code = [c.source for c in notebook.cells[1:] if c.cell_type == "code"]
            assert code and all(c in source for c in code), name
    assert find_answers(dest / "site", DEFS) == []
    css = (dest / "site" / "_static" / "narrow_screens.css").read_text()
    assert "pre-wrap" in css and "max-width: 640px" in css


@pytest.mark.slow
@pytest.mark.xdist_group("book-build")  # copies _build/.jupyter_cache: after test_book wrote it
def test_make_book_works_in_the_self_study_tree(tmp_path):
    """A reader's `make book` in a fresh clone of the self-study tree: new .venv, -W clean."""
    from site_tools import ensure_built

    dest = tmp_path / "out"
    publish(ROOT, dest, site=ensure_built(), self_study=True, **QUIET)
    published = dest / "self-study"
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
    assert yaml.safe_load((published / "_config.yml").read_text())["repository"]["url"] \
        == reader_repository(ROOT)
