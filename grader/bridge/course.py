"""Where things live: the solutions/exercises roots, nbgrader course directories, notebook files.

Every command works on a *root* that holds `solutions/<id>/<id>.ipynb` and
`exercises/<id>/<id>.ipynb`. By default that is the repository this package sits in; `--root`
or the environment variable `GRADER_ROOT` point it elsewhere (the tests use a toy root).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "GRADER_ROOT"

# The one rule on the course library: answer code may not touch it at all. Students implement
# the contracts, never import them, and a release runs where only torch, numpy, matplotlib and
# scikit-learn are installed. Applied by the sandbox (the library is not mounted where graded
# code runs), the tamper scan (an import of it is flagged), the hidden checks (objects from it
# fail) and tests/book/test_exercises_portable.py (no release names it). The grader package is the
# instructor's and off limits to answers as well.
LIBRARY_PACKAGE = "resnet_course"
COURSE_PACKAGES = (LIBRARY_PACKAGE, "grader")
LIBRARY_MODULES_FOR_ANSWERS: tuple[str, ...] = ()  # modules of it answers may import: none


def answer_may_import(module: str) -> bool:
    """Whether answer code may import `module` (dotted): anything but the course packages,
    except the library modules listed in LIBRARY_MODULES_FOR_ANSWERS."""
    if module.split(".")[0] not in COURSE_PACKAGES:
        return True
    return any(module == m or module.startswith(f"{m}.") for m in LIBRARY_MODULES_FOR_ANSWERS)


def library_visible_to_answers() -> bool:
    """Whether the process that runs answer code (kernel, subject) can see the library."""
    return bool(LIBRARY_MODULES_FOR_ANSWERS)


@dataclass(frozen=True)
class Roots:
    """The instructor versions (nbgrader "source") and the released student versions."""

    solutions: Path
    exercises: Path

    @classmethod
    def from_root(cls, root: str | os.PathLike | None = None) -> Roots:
        if root is None:
            root = os.environ.get(ROOT_ENV) or Path(__file__).resolve().parents[2]
        root = Path(root).resolve()
        return cls(solutions=root / "solutions", exercises=root / "exercises")

    def source_notebook(self, assignment_id: str) -> Path:
        return self.solutions / assignment_id / f"{assignment_id}.ipynb"

    def released_notebook(self, assignment_id: str) -> Path:
        return self.exercises / assignment_id / f"{assignment_id}.ipynb"


@dataclass(frozen=True)
class CourseLayout:
    """DIR, the nbgrader course directory that `autograde` writes: the one place its layout is
    spelled. nbgrader's folders hold <student>/<assignment>/ (source/ and release/ hold
    <assignment>/); the grader adds logs/ and review/ (<student>/<assignment>.* each), the CSVs
    at the top, and keeps its own bookkeeping under DIR/.grader/: a leading dot, which no student
    id has (grader.files.NAME_PATTERN starts with a letter or digit), so no student's records
    can land on a file of the grader's (`setup.lock`, `last_run.json`, `shards`)."""

    root: Path

    SUBMITTED, AUTOGRADED, FEEDBACK = "submitted", "autograded", "feedback"  # nbgrader's
    LOGS, REVIEW = "logs", "review"  # the grader's, one file per submission
    GRADER = ".grader"  # the grader's own files (below), never a student's
    RUN_RECORD = Path(GRADER) / "last_run.json"  # what the last unsharded run graded
    SHARDS = Path(GRADER) / "shards"  # <N>/<K>.json: what shard K of N graded
    LEGACY_STATE = "state"  # where these lived before (migrate_legacy_state)

    SOURCE, RELEASE = "source", "release"  # nbgrader's, <assignment>/ each
    GRADES_CSV, CELLS_CSV, REVIEW_CSV = "grades.csv", "grades_by_cell.csv", "review.csv"
    SIMILARITY_CSV, SIMILARITY_PAGES = "similarity.csv", "similarity"  # grader similarity
    GRADEBOOK = "gradebook.db"  # nbgrader's SQLite gradebook (unless --db-url)

    def source_root(self) -> Path:
        """DIR/source: one folder per assignment (a Roots.solutions for pick_assignments)."""
        return self.root / self.SOURCE

    def source(self, assignment_id: str) -> Path:
        """The assignment's instructor version (copied from solutions/; hidden tests in it)."""
        return self.source_root() / assignment_id

    def source_notebook(self, assignment_id: str) -> Path:
        return self.source(assignment_id) / f"{assignment_id}.ipynb"

    def released(self, assignment_id: str) -> Path:
        return self.root / self.RELEASE / assignment_id

    def released_notebook(self, assignment_id: str) -> Path:
        return self.released(assignment_id) / f"{assignment_id}.ipynb"

    def submitted_root(self) -> Path:
        """DIR/submitted: one folder per student."""
        return self.root / self.SUBMITTED

    def submitted(self, student_id: str, assignment_id: str) -> Path:
        return self.submitted_root() / student_id / assignment_id

    def results(self, student_id: str, assignment_id: str) -> list[Path]:
        """The folders one submission's grading writes (staged, autograded, feedback): an
        earlier run's must not survive a regrade."""
        return [self.root / sub / student_id / assignment_id
                for sub in (self.SUBMITTED, self.AUTOGRADED, self.FEEDBACK)]

    def submitted_notebook(self, student_id: str, assignment_id: str) -> Path:
        return self.submitted(student_id, assignment_id) / f"{assignment_id}.ipynb"

    def autograded(self, student_id: str, assignment_id: str) -> Path:
        return self.root / self.AUTOGRADED / student_id / assignment_id

    def autograded_notebook(self, student_id: str, assignment_id: str) -> Path:
        return self.autograded(student_id, assignment_id) / f"{assignment_id}.ipynb"

    def feedback_page(self, student_id: str, assignment_id: str) -> Path:
        return self.root / self.FEEDBACK / student_id / assignment_id / f"{assignment_id}.html"

    def grades_csv(self) -> Path:
        return self.root / self.GRADES_CSV

    def cells_csv(self) -> Path:
        return self.root / self.CELLS_CSV

    def review_csv(self) -> Path:
        return self.root / self.REVIEW_CSV

    def similarity_csv(self) -> Path:
        return self.root / self.SIMILARITY_CSV

    def similarity_pages(self) -> Path:
        """DIR/similarity/: index.html and one page per reported pair."""
        return self.root / self.SIMILARITY_PAGES

    def gradebook(self) -> Path:
        return self.root / self.GRADEBOOK

    def lms_file(self, name: str) -> Path:
        """DIR/<name>: a gradebook file for an LMS (grader.records.lms_export.FILES names them)."""
        return self.root / name

    def log(self, student_id: str, assignment_id: str) -> Path:
        return self.root / self.LOGS / student_id / f"{assignment_id}.log"

    def review_note(self, student_id: str, assignment_id: str) -> Path:
        """Why this submission was flagged (plain text, appended to)."""
        return self.root / self.REVIEW / student_id / f"{assignment_id}.txt"

    def nbgrader_config(self) -> Path:
        """The nbgrader_config.py that nbgrader's own commands and formgrader read here."""
        return self.root / "nbgrader_config.py"

    def grader_files(self) -> Path:
        return self.root / self.GRADER

    def state(self, student_id: str, assignment_id: str) -> Path:
        """The resume record of one submission (grader.records.resume)."""
        return self.grader_files() / "state" / student_id / f"{assignment_id}.json"

    def setup_lock(self) -> Path:
        """The flock that serialises the shards' setup on one machine (grader.records.shard)."""
        return self.grader_files() / "setup.lock"

    def run_record(self) -> Path:
        return self.root / self.RUN_RECORD

    def shard_groups(self) -> Path:
        return self.root / self.SHARDS

    def shard_record(self, count: int, index: int) -> Path:
        return self.shard_groups() / str(count) / f"{index}.json"

    def template(self, assignment_id: str) -> Path:
        """The private gradebook nbgrader's child process starts from
        (grader.bridge.nbgrader_steps)."""
        return self.grader_files() / "templates" / f"{assignment_id}.db"

    def legacy_state(self) -> Path:
        """DIR/state/ of a course directory written before DIR/.grader/ existed."""
        return self.root / self.LEGACY_STATE


def migrate_legacy_state(root: Path) -> None:
    """Move a course directory written before DIR/.grader/ existed to today's layout.

    DIR/state/ held the grader's files next to one folder per student, so a student named
    `setup.lock` or `last_run.json` crashed the run. What `grader export` needs (the last run's
    record, the shards' records) moves to DIR/.grader/; the rest (the old resume records,
    templates and lock) is dropped: it is rebuilt by the next autograde, whose resume
    fingerprint differs anyway, so every submission is graded again once (hand grades stay, as
    on any regrade). Nothing is done when DIR/state/ is absent; a DIR/state/ that is a link or
    a file is refused (ValueError), not followed."""
    from grader.files import lstat_kind

    layout = CourseLayout(Path(root))
    legacy = layout.legacy_state()
    kind = lstat_kind(legacy)
    if kind == "missing":
        return
    if kind != "dir":
        raise ValueError(f"{legacy} is a {kind}, not the folder an earlier autograde wrote; "
                         "move it away and run again")
    strange = _not_the_graders(legacy)
    if strange:
        raise ValueError(f"{legacy} holds files an earlier autograde did not write "
                         f"({', '.join(strange[:5])}); move them away and run again")
    layout.grader_files().mkdir(exist_ok=True)
    moves = [(legacy / "last_run.json", layout.run_record(), "file"),
             (legacy / "shards", layout.shard_groups(), "dir")]
    for old, new, expected in moves:
        if lstat_kind(old) == expected and lstat_kind(new) == "missing":
            os.replace(old, new)
    remove_tree(legacy)


def _not_the_graders(legacy: Path) -> list[str]:
    """Entries of an old DIR/state/ that the grader never wrote there (sorted, relative)."""
    own = {"last_run.json", "last_run.tmp", "setup.lock", "shards", ".templates"}
    strange = []
    for entry in sorted(legacy.iterdir()):
        if entry.name in own:
            continue
        if entry.is_symlink() or not entry.is_dir():
            strange.append(entry.name)
            continue  # a student's folder of resume records: <assignment>.json (or .tmp)
        strange += [f"{entry.name}/{f.name}" for f in sorted(entry.iterdir())
                    if f.is_symlink() or not f.is_file() or f.suffix not in (".json", ".tmp")]
    return strange


def list_assignments(solutions: Path) -> list[str]:
    """Assignment ids: folders `solutions/<id>/` that hold `<id>.ipynb`, sorted."""
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and (p / f"{p.name}.ipynb").is_file())


def pick_assignments(roots: Roots, assignment_id: str | None) -> list[str]:
    """`[assignment_id]` if it exists in solutions/, else every assignment; ValueError if none."""
    known = list_assignments(roots.solutions)
    if assignment_id is not None:
        if assignment_id not in known:
            raise ValueError(f"unknown assignment {assignment_id!r}: no "
                             f"{roots.source_notebook(assignment_id)} (known: {known or 'none'})")
        return [assignment_id]
    if not known:
        raise ValueError(f"no assignments found: {roots.solutions} has no <id>/<id>.ipynb")
    return known


def put_venv_on_path() -> None:
    """nbgrader's Gradebook runs the `alembic` executable, which lives next to this Python."""
    bin_dir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bin_dir not in parts:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[p for p in parts if p]])


def sqlite_url(course_root: Path) -> str:
    # timeout: with --jobs N, N processes write grades to one SQLite file; wait for the lock.
    return f"sqlite:///{CourseLayout(course_root.resolve()).gradebook()}?timeout=120"


def replace_tree(src: Path, dest: Path) -> None:
    """Make `dest` an exact copy of the folder `src` (files copied, never moved)."""
    if dest.exists():
        remove_tree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints",
                                                             "__pycache__"))
    for path in [dest, *dest.rglob("*")]:
        # nbgrader writes read-only (444) files; copies must stay writable for the next run
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o600 | (0o100 if path.is_dir() else 0))


def remove_tree(path: Path) -> None:
    """Delete a folder the grader made (links inside are removed, never followed)."""
    from grader.files import remove_tree as remove_no_follow

    remove_no_follow(path)


def notebook_problem(path: Path) -> str | None:
    """Why `path` is not a gradable Jupyter notebook (empty, not JSON, not nbformat 4), or None."""
    import nbformat

    from grader.files import UnsafeFile, read_bytes

    try:
        text = read_bytes(path).decode("utf-8")  # no link, FIFO or device is followed
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except UnsafeFile as err:
        return str(err)
    if not text.strip():
        return "empty file"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return f"not JSON ({err.msg} at line {err.lineno})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return "JSON but not a notebook (no list of cells)"
    if data.get("nbformat") != 4:
        return f"unsupported nbformat {data.get('nbformat')!r} (expected 4)"
    try:
        nbformat.reads(text, as_version=4)
    except Exception as err:  # nbformat raises several types for malformed notebooks
        return f"unreadable notebook ({type(err).__name__}: {err})"
    return None


def write_normalized(nb, path: Path) -> None:
    """Write a notebook (an nbformat NotebookNode) deterministically: no outputs or execution
    counts, sorted JSON keys."""
    import nbformat

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    # nbformat.writes sorts keys and indents by 1; a trailing newline like Jupyter's own files
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
