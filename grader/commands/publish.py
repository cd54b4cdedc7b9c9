"""`python -m grader publish DEST [--site DIR] [--self-study]`: what readers and students get.

The instructors' repository (this one: solutions/, grader/, tests/, and the course library,
whose graded objects are the answers to the assignments) stays private. Publish writes:

- DEST/site/ — the **course site**: the built course edition (`make book`, `_build/html`, or
  `--site DIR`), static HTML ready to host;
- DEST/starter/ — the **student starter tree**: the released notebooks (exercises/), the pinned
  packages they import (requirements.txt, cut from ours by grader.commands.environment), a Makefile
  (`make lab`) and a student README (grader/reader/starter/). No course library: the answers
  may not import it, so students do not need it;
- DEST/self-study/ — only with `--self-study`: the **full source tree** (chapters, the course
  library *with the reference implementation of every graded object*, released exercises, the
  book's configuration; grader/reader/'s README, Makefile and pyproject.toml), each chapter with
  a paired notebook book/<chapter>.ipynb for the launch buttons (the chapter as myst-nb reads
  it, with a first cell that makes the library importable on Colab and Binder).

LICENSE and LICENSE-CONTENT of the repository root are copied into every output when present.

Everything is staged in a temporary folder and checked first; nothing is written when any output
would hold solution, hidden-test or mark-scheme text (all outputs), or any implementation of a
graded object (site and starter; grader.integrity.answer_scan). Each output folder is written with
grader.commands.owned_tree: publish replaces only the files it wrote before (listed in the folder's
`.published-files`), refuses a non-empty folder it did not create, and keeps everything else
(`.git`, a `.venv`, a LICENSE or CI files added by hand).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml
from packaging.utils import canonicalize_name

from grader.bridge.course import list_assignments
from grader.commands.environment import (
    imported_distributions,
    imported_modules,
    packages_distributions,
    pinned_closure,
    read_pins,
)
from grader.commands.owned_tree import MANIFEST, OwnershipError, check_writable, write_owned
from grader.commands.release import MARKERS, Leak, _text_lines, secret_lines
from grader.commands.release import find_leaks as release_leaks
from grader.integrity.answer_scan import Answer, find_answers
from grader.integrity.graded import graded_definitions

# The full source tree (self-study), relative to the repository root (folders copied whole,
# minus IGNORED). Everything else (solutions/, grader/, tests/, .ci/, ...) stays private.
PUBLIC = ("book", "exercises", "src/resnet_course", "_ext", "_config.yml", "_toc.yml",
          "references.bib", "requirements.txt")
LICENCES = ("LICENSE", "LICENSE-CONTENT")
PARTS = ("site", "starter", "self-study")
READER_DIR = Path(__file__).resolve().parents[1] / "reader"
# grader/reader/<name> -> <path in the self-study tree>; {reader_repository} is filled in.
READER_FILES = {"README.md": "README.md", "Makefile": "Makefile",
                "pyproject.toml": "pyproject.toml", "gitignore": ".gitignore"}
STARTER_FILES = {"README.md": "README.md", "Makefile": "Makefile", "gitignore": ".gitignore"}
# The starter's environment: what the notebooks import, and JupyterLab to open them.
STARTER_TOOLS = ("jupyterlab",)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info",
                                 ".DS_Store")
# The folder a publication by earlier versions of this tool wrote DEST into (the whole tree).
OLD_STAMP = ".published-by-grader"
# Shorter lines ("return x", "model.eval()") are too generic to call a leak (as
# tests/book/test_book).
MIN_LINE = 20
SELF_STUDY_WARNING = (
    "DEST/self-study reveals the course library's source, which holds the reference "
    "implementation of every graded object ({names}): publish it only where students of a "
    "graded course may see the answers (self-study readers; after the course)")


class PublishError(RuntimeError):
    """DEST is not safe to write, the site is not built, or an output would leak."""


def reader_repository(root: Path) -> str:
    """`repository.url` of _config.yml: the repository of the full source tree (the self-study
    tree), which the book's repository and launch buttons and the intro's clone instructions
    name."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    url = str((config.get("repository") or {}).get("url") or "").rstrip("/")
    if not url:
        raise PublishError(f"{root / '_config.yml'} has no repository.url (the reader repository)")
    return url


def starter_repository(root: Path) -> str:
    """`sphinx.config.starter_repository` of _config.yml: the repository of the starter tree,
    whose exercise notebooks the exercise pages' launch buttons open ("" when not set)."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    sphinx = (config.get("sphinx") or {}).get("config") or {}
    return str(sphinx.get("starter_repository") or "").rstrip("/")


def chapters(root: Path) -> list[str]:
    """The chapters of _toc.yml that are MyST notebooks in book/ ("book/identity"): a `.md`
    whose front matter names a kernelspec, as myst-nb decides. Only they run code, and only they
    get launch buttons and a paired notebook."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    found = []

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            name = entry.get("file", "")
            if name.startswith("book/") and _is_myst_notebook(root / f"{name}.md"):
                found.append(name)
            walk(entry.get("sections", []) + entry.get("chapters", []))

    walk([{"file": toc["root"]}, *[c for part in toc.get("parts", [])
                                   for c in part.get("chapters", [])]])
    return found


def _is_myst_notebook(path: Path) -> bool:
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    front = yaml.safe_load(match.group(1)) if match else None
    return isinstance(front, dict) and "kernelspec" in front


# ---- staging -----------------------------------------------------------------------------

def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _copy_licences(root: Path, out: Path) -> list[str]:
    copied = []
    for name in LICENCES:
        if (root / name).is_file():
            shutil.copy2(root / name, out / name)
            copied.append(name)
    return copied


def _licence_note(copied: list[str]) -> str:
    notes = {"LICENSE": "`LICENSE` (the code)", "LICENSE-CONTENT": "`LICENSE-CONTENT` (the "
             "text and figures)"}
    if not copied:
        return ""
    return "\n\nLicences: " + " and ".join(notes[name] for name in copied) + "."


def stage_site(root: Path, site: Path, out: Path) -> None:
    """Copy the built course edition `site` into `out` (refused when it is missing or older
    than a chapter's source)."""
    if not (site / "index.html").is_file():
        raise PublishError(f"no built book at {site} (no index.html): run `make book` first, "
                           "or pass --site DIR")
    stale = [f"{name}.md" for name in chapters(root)
             if (site / "_sources" / f"{name}.md").is_file()
             and (site / "_sources" / f"{name}.md").read_bytes()
             != (root / f"{name}.md").read_bytes()]
    if stale:
        raise PublishError(f"the built book at {site} is older than {', '.join(stale[:5])}: "
                           "run `make book` again")
    shutil.copytree(site, out, ignore=IGNORED, symlinks=False)
    (out / ".buildinfo").unlink(missing_ok=True)  # Sphinx's rebuild record, not the site's
    _copy_licences(root, out)


def repository_modules(root: Path) -> set[str]:
    """Top-level modules of the instructor repository (the course library, grader, ...)."""
    return {Path(__file__).resolve().parents[1].name} | {
        p.name for p in [*(root / "src").glob("*"), *root.glob("*")]
        if (p / "__init__.py").is_file()}


def starter_requirements(root: Path) -> tuple[list[str], list[str], list[str]]:
    """(pinned requirements of the starter tree, the packages its notebooks import, the
    modules of this repository they import: none may, students do not get them)."""
    sources = [cell.source for path in sorted((root / "exercises").glob("*/*.ipynb"))
               for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    local = repository_modules(root)
    try:
        imported = imported_distributions(sources, local=local)
        pins = pinned_closure(root / "requirements.txt", imported | set(STARTER_TOOLS))
    except LookupError as err:
        raise PublishError(f"the starter environment: {err}") from err
    return pins, sorted(imported), sorted(imported_modules(sources) & local)


def stage_starter(root: Path, out: Path) -> tuple[list[str], list[Leak]]:
    """The student starter tree into `out`; returns the licences copied and an exercise's
    import of a module of this repository as a leak."""
    ids = list_assignments(root / "exercises")
    for assignment_id in ids:
        notebook = root / "exercises" / assignment_id / f"{assignment_id}.ipynb"
        if not notebook.is_file():
            raise PublishError(f"{notebook} is missing: run `python -m grader release`")
        (out / "exercises" / assignment_id).mkdir(parents=True)
        shutil.copy2(notebook, out / "exercises" / assignment_id / notebook.name)
    pins, imported, local = starter_requirements(root)
    (out / "requirements.txt").write_text(
        "# The packages the exercise notebooks import, JupyterLab, and their dependencies,\n"
        "# pinned as the course tests them.\n" + "".join(f"{pin}\n" for pin in pins),
        encoding="utf-8")
    licences = _copy_licences(root, out)
    url = starter_repository(root)
    clone = (f"git clone {url}\ncd {url.rsplit('/', 1)[-1]}\n") if url else ""
    values = {"assignment_ids": ", ".join(f"`{i}`" for i in ids), "clone": clone,
              "packages": ", ".join(imported), "licences": _licence_note(licences)}
    for name, rel in STARTER_FILES.items():
        text = (READER_DIR / "starter" / name).read_text(encoding="utf-8")
        (out / rel).write_text(_fill(text, values), encoding="utf-8")
    return licences, [Leak("exercises", f"import {module}", "an exercise imports a module of "
                           "the instructor repository, which students do not get")
                      for module in local]


def stage_self_study(root: Path, out: Path) -> None:
    """The full source tree into `out`, with a paired notebook per chapter."""
    for rel in PUBLIC:
        src = root / rel
        if src.is_dir():
            shutil.copytree(src, out / rel, ignore=IGNORED, symlinks=False)
        elif src.is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / rel)
        else:
            raise PublishError(f"{src} is missing")
    url = reader_repository(root)
    values = {"reader_repository": url, "reader_repository_name": url.rsplit("/", 1)[-1],
              "licences": _licence_note(_copy_licences(root, out))}
    for name, rel in READER_FILES.items():
        text = (READER_DIR / name).read_text(encoding="utf-8")
        (out / rel).write_text(_fill(text, values), encoding="utf-8")
    setup = setup_cell(root)
    for name in chapters(root):
        nbformat.write(paired_notebook(root, name, setup), out / f"{name}.ipynb")


def chapter_packages(root: Path) -> dict[str, str]:
    """module -> pin of the third-party packages the chapters and the library import (what the
    setup cell installs where they are missing)."""
    sources = [p.read_text(encoding="utf-8") for p in (root / "src").rglob("*.py")]
    for name in chapters(root):
        notebook = _myst_notebook(root / f"{name}.md")
        sources += [c.source for c in notebook.cells if c.cell_type == "code"]
    local = repository_modules(root)
    pins = read_pins(root / "requirements.txt")
    provided = packages_distributions()
    modules = sorted(imported_modules(sources) - set(sys.stdlib_module_names) - local)
    wanted = {}
    for module in modules:
        dists = [canonicalize_name(d) for d in provided.get(module, [])]
        pinned = [pins[d] for d in dists if d in pins]
        if not dists:
            continue  # not from an installed package: nothing to install
        if not pinned:
            raise PublishError(f"the chapters import {module!r}, which requirements.txt does "
                               "not pin")
        wanted[module] = pinned[0]
    return wanted


def _myst_notebook(path: Path) -> nbformat.NotebookNode:
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(path.read_text(encoding="utf-8"), path=str(path))


def setup_cell(root: Path) -> nbformat.NotebookNode:
    url = reader_repository(root)
    text = (READER_DIR / "chapter_setup.py").read_text(encoding="utf-8")
    packages = json.dumps(chapter_packages(root), indent=4)
    text = (text.replace("__READER_REPOSITORY__", url)
            .replace("__READER_REPOSITORY_NAME__", url.rsplit("/", 1)[-1])
            .replace("PACKAGES: dict[str, str] = {}", f"PACKAGES = {packages}"))
    return nbformat.v4.new_code_cell(text, metadata={"tags": ["launch-setup"]})


def paired_notebook(root: Path, name: str, setup: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The chapter `name` as a notebook for Colab/Binder, read from its MyST source the way
    myst-nb reads it for the build (the page's .ipynb download is the same notebook), with the
    `setup` cell (setup_cell) first. No outputs: the chapters glue their results into the text."""
    notebook = _myst_notebook(root / f"{name}.md")
    notebook.cells.insert(0, setup)
    notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                                "language": "python"})
    nbformat.validator.normalize(notebook)
    return notebook


# ---- checks ------------------------------------------------------------------------------

def private_lines(root: Path) -> set[str]:
    """Lines no output may contain: solution, hidden-test and mark-scheme regions and model
    answers of solutions/ (grader.commands.release.secret_lines), and the hidden-test logic of
    grader/checks/; minus what the self-study tree shows by design (the course library's
    source and the released exercises), imports, comments and lines shorter than MIN_LINE."""
    answers: set[str] = set()
    solutions = root / "solutions"
    for assignment_id in list_assignments(solutions):
        answers |= secret_lines(solutions / assignment_id)
    public = set()
    for path in sorted((root / "src" / "resnet_course").rglob("*.py")):
        public |= {s.strip() for s in path.read_text(encoding="utf-8").splitlines()}
    for path in sorted((root / "exercises").glob("*/*.ipynb")):
        public |= {s.strip() for s in _text_lines(path, path.read_text(encoding="utf-8"))}
    checks = set()
    for path in sorted((root / "grader" / "checks").rglob("*.py")):
        checks |= {s.strip() for s in path.read_text(encoding="utf-8").splitlines()}
    return {s for s in (answers | checks) - public
            if len(s) >= MIN_LINE and not s.startswith(("#", "import ", "from "))}


def find_leaks(root: Path, tree: Path, secrets: set[str] | None = None) -> list[Leak]:
    """Private folders or files, instructor markers and private lines (`secrets`, default
    private_lines(root)) anywhere in the staged `tree`, and release's own leak check of each
    exercises/<id>/ against solutions/<id>/."""
    leaks = [Leak(str(p.relative_to(tree)), "", "private folder")
             for p in tree.rglob("*") if p.relative_to(tree).parts[0] in
             {"solutions", "grader", "tests", ".ci"}]
    private_files = {p.read_bytes() for folder in ("solutions", "grader") for p in
                     (root / folder).rglob("*") if p.is_file() and p.stat().st_size > 200
                     and "reader" not in p.relative_to(root).parts}  # grader/reader: templates
    leaks += [Leak(str(p.relative_to(tree)), "", "a copy of a file of solutions/ or grader/")
              for p in tree.rglob("*") if p.is_file() and p.stat().st_size > 200
              and p.read_bytes() in private_files]
    for assignment_id in list_assignments(root / "solutions"):
        if (tree / "exercises" / assignment_id).is_dir():
            leaks += release_leaks(root / "solutions" / assignment_id,
                                   tree / "exercises" / assignment_id)
    secrets = private_lines(root) if secrets is None else secrets
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        name = str(path.relative_to(tree))
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data cannot carry notebook text
        leaks += [Leak(name, marker, "instructor marker") for marker in MARKERS if marker in raw]
        # in a notebook, the lines of every cell's source and outputs (as release reads them);
        # in a page, its text without tags and entities
        lines = [*raw.splitlines(), *_text_lines(path, raw)]
        if path.suffix in (".html", ".htm"):
            lines += html.unescape(re.sub(r"<[^>]+>", "", raw)).splitlines()
        candidates = {s.strip() for s in lines}
        leaks += [Leak(name, s, "solution, hidden-test or rubric line")
                  for s in sorted(candidates & secrets)]
    return leaks


# ---- writing -----------------------------------------------------------------------------

def _check_dest(root: Path, dest: Path) -> None:
    tops = {rel.split("/")[0] for rel in PUBLIC}
    if dest == root or root in dest.parents and dest.parts[len(root.parts)] in tops:
        raise PublishError(f"{dest} is the instructor repository or inside a folder it publishes")
    if dest.is_symlink() or dest.exists() and not dest.is_dir():
        raise PublishError(f"{dest} exists and is not a folder")
    if not dest.exists():
        return
    entries = {p.name for p in dest.iterdir()} - {".git"}
    if OLD_STAMP in entries:
        raise PublishError(f"{dest} holds a publication of an earlier version of this tool (the "
                           "whole tree in one folder); move it away: publish now writes "
                           f"{dest}/site, {dest}/starter and, with --self-study, "
                           f"{dest}/self-study")
    ours = {p for p in PARTS if (dest / p / MANIFEST).is_file()}
    fresh = {p for p in PARTS if (dest / p).is_dir() and not (dest / p).is_symlink()
             and {e.name for e in (dest / p).iterdir()} <= {".git"}}  # e.g. a clone of a repo
    if entries and not ours and not entries <= fresh:
        raise PublishError(f"{dest} is neither empty nor an earlier publication (none of "
                           f"{', '.join(p + '/' + MANIFEST for p in PARTS)}); refusing to write "
                           "into it")


def publish(root: Path, dest: Path, *, site: Path | None = None, self_study: bool = False,
            log=print) -> dict[str, Path]:
    """Stage, check and write the outputs into DEST/<part>; returns part -> folder written.
    PublishError, with nothing written, when DEST is unsafe or an output would leak."""
    root, dest = root.resolve(), dest.resolve()
    site = (site or root / "_build" / "html").resolve()
    parts = ["site", "starter"] + (["self-study"] if self_study else [])
    _check_dest(root, dest)
    definitions = graded_definitions(root)
    with tempfile.TemporaryDirectory(prefix="grader-publish-") as tmp:
        staged = {part: Path(tmp) / part for part in parts}
        stage_site(root, site, staged["site"])
        staged["starter"].mkdir()
        licences, problems = stage_starter(root, staged["starter"])
        problems = [_in("starter", p) for p in problems]
        if self_study:
            staged["self-study"].mkdir()
            stage_self_study(root, staged["self-study"])
        secrets = private_lines(root)
        for part, tree in staged.items():
            found = find_leaks(root, tree, secrets)
            if part != "self-study":
                found += find_answers(tree, definitions)
            problems += [_in(part, p) for p in found]
        if problems:
            raise PublishError(f"refusing to publish: {len(problems)} leak(s) of instructor text "
                               f"or answers (nothing written to {dest}):\n  "
                               + "\n  ".join(str(p) for p in problems[:20]))
        try:
            for part in parts:  # every folder checked before any is written
                check_writable(staged[part], dest / part)
            for part in parts:
                written, removed = write_owned(staged[part], dest / part)
                log(f"{part}: {len(written)} files -> {dest / part}"
                    + (f" ({len(removed)} files of the previous publication deleted)"
                       if removed else ""))
        except OwnershipError as err:
            raise PublishError(str(err)) from err
    log("licences copied into every output: " + (", ".join(licences) if licences else
        f"none ({' and '.join(LICENCES)} are not at {root})"))
    if self_study:
        names = sorted({d.name for d in definitions})
        log("WARNING: " + SELF_STUDY_WARNING.format(names=", ".join(names)))
    elif (dest / "self-study" / MANIFEST).is_file():
        log(f"{dest / 'self-study'} (an earlier publication) is left as it was: pass "
            "--self-study to update it")
    return {part: dest / part for part in parts}


def _in(part: str, problem: Leak | Answer) -> Leak | Answer:
    if isinstance(problem, Leak):
        return Leak(f"{part}/{problem.file}", problem.line, problem.why)
    return Answer(f"{part}/{problem.file}", problem.name, problem.why)
