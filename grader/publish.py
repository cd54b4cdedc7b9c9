"""`python -m grader publish DEST`: write the reader repository's tree into DEST.

Two repositories: the instructors' (this one: solutions/, grader/, tests/) stays private; the
*reader* repository, which students clone and the book's repository and launch buttons point at
(`repository.url` in _config.yml), holds only what PUBLIC lists plus the files of grader/reader/
(a student README, a Makefile whose `make book` works without the grader, a pyproject.toml that
installs only the course library). The tree is staged in a temporary folder and checked; on any
leak of solution, hidden-test or mark-scheme text nothing is written to DEST.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from grader.course import list_assignments, remove_tree
from grader.release import MARKERS, Leak, _text_lines, secret_lines
from grader.release import find_leaks as release_leaks

# What the reader tree holds, relative to the repository root (folders copied whole, minus
# IGNORED). Everything else (solutions/, grader/, tests/, .ci/, ...) stays private.
PUBLIC = ("book", "exercises", "src/resnet_course", "_ext", "_config.yml", "_toc.yml",
          "references.bib", "requirements.txt")
# grader/reader/<name> -> <path in the reader tree>; {reader_repository} is filled in.
READER_FILES = {"README.md": "README.md", "Makefile": "Makefile",
                "pyproject.toml": "pyproject.toml", "gitignore": ".gitignore"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info",
                                 ".DS_Store")
# A file DEST must hold for publish to replace its contents (besides .git): a folder that is
# neither empty nor an earlier publication is refused, so a typo cannot wipe a folder.
STAMP = ".published-by-grader"
# Shorter lines ("return x", "model.eval()") are too generic to call a leak (as tests/test_book).
MIN_LINE = 20
READER_DIR = Path(__file__).resolve().parent / "reader"


class PublishError(RuntimeError):
    """DEST is not safe to write, or the staged tree would leak instructor-only text."""


def reader_repository(root: Path) -> str:
    """`repository.url` of _config.yml: the one place the reader repository is named."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    url = str((config.get("repository") or {}).get("url") or "").rstrip("/")
    if not url:
        raise PublishError(f"{root / '_config.yml'} has no repository.url (the reader repository)")
    return url


def stage(root: Path, out: Path) -> None:
    """Write the reader tree of the repository at `root` into the empty folder `out`."""
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
    for name, rel in READER_FILES.items():
        text = (READER_DIR / name).read_text(encoding="utf-8")
        text = (text.replace("{reader_repository}", url)
                .replace("{reader_repository_name}", url.rsplit("/", 1)[-1]))
        (out / rel).write_text(text, encoding="utf-8")
    (out / STAMP).write_text(f"The reader repository {url}, written by the instructors' "
                             "`python -m grader publish`; do not edit here.\n", encoding="utf-8")


def private_lines(root: Path) -> set[str]:
    """Lines the reader tree must not contain: solution, hidden-test and mark-scheme regions and
    model answers of solutions/ (grader.release.secret_lines), and the hidden-test logic of
    grader/checks/; minus what is public by design (the course library's source and the
    released exercises, as tests/test_book.py counts them), imports, comments and lines shorter
    than MIN_LINE, which are too generic to call a leak."""
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


def find_leaks(root: Path, tree: Path) -> list[Leak]:
    """Private folders or files, instructor markers and private lines anywhere in the staged
    `tree`, and release's own leak check of each exercises/<id>/ against solutions/<id>/."""
    leaks = [Leak(str(p.relative_to(tree)), "", "private folder")
             for p in tree.rglob("*") if p.relative_to(tree).parts[0] in
             {"solutions", "grader", "tests", ".ci"}]
    private_files = {p.read_bytes() for folder in ("solutions", "grader") for p in
                     (root / folder).rglob("*") if p.is_file() and p.stat().st_size > 200
                     and "reader" not in p.relative_to(root).parts}  # grader/reader: templates
    leaks += [Leak(str(p.relative_to(tree)), "", "a copy of a file of solutions/ or grader/")
              for p in tree.rglob("*") if p.is_file() and p.read_bytes() in private_files]
    for assignment_id in list_assignments(root / "solutions"):
        if (tree / "exercises" / assignment_id).is_dir():
            leaks += release_leaks(root / "solutions" / assignment_id,
                                   tree / "exercises" / assignment_id)
    secrets = private_lines(root)
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        name = str(path.relative_to(tree))
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data cannot carry notebook text
        leaks += [Leak(name, marker, "instructor marker") for marker in MARKERS if marker in raw]
        # in a notebook, the lines of every cell's source and outputs (as release reads them)
        candidates = {s.strip() for s in [*raw.splitlines(), *_text_lines(path, raw)]}
        leaks += [Leak(name, s, "solution, hidden-test or rubric line")
                  for s in sorted(candidates & secrets)]
    return leaks


def _check_dest(dest: Path) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise PublishError(f"{dest} exists and is not a folder")
    entries = {p.name for p in dest.iterdir()} - {".git"}
    if entries and STAMP not in entries:
        raise PublishError(f"{dest} is neither empty nor an earlier publication (no {STAMP}); "
                           "refusing to replace its contents")


def publish(root: Path, dest: Path, log=print) -> list[str]:
    """Stage, check and write the reader tree into `dest` (its .git, if any, is kept).
    Returns the top-level names written. PublishError, with nothing written, on a leak."""
    root, dest = root.resolve(), dest.resolve()
    tops = {rel.split("/")[0] for rel in PUBLIC}
    if dest == root or root in dest.parents and dest.parts[len(root.parts)] in tops:
        raise PublishError(f"{dest} is the instructor repository or inside a folder it publishes")
    _check_dest(dest)
    with tempfile.TemporaryDirectory(prefix="grader-publish-") as tmp:
        staged = Path(tmp) / "reader"
        staged.mkdir()
        stage(root, staged)
        leaks = find_leaks(root, staged)
        if leaks:
            raise PublishError(f"refusing to publish: {len(leaks)} leak(s) of instructor text "
                               f"(nothing written to {dest}):\n  "
                               + "\n  ".join(str(leak) for leak in leaks[:20]))
        dest.mkdir(parents=True, exist_ok=True)
        for entry in dest.iterdir():
            if entry.name != ".git":
                remove_tree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        names = sorted(p.name for p in staged.iterdir())
        for name in names:
            src = staged / name
            if src.is_dir():
                shutil.copytree(src, dest / name, symlinks=False)
            else:
                shutil.copy2(src, dest / name)
    log(f"published the reader tree ({', '.join(names)}) -> {dest}")
    return names
