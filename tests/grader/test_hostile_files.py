"""Hostile files: what a submission leaves behind or hands in is data, never followed or run.

Issue 10, items 2-5. Unit tests of grader.files and grader.integrity.sanitize, then one `autograde
--jobs 2` run of the toy course (tests/fixtures/toy) over hand-ins that plant links, FIFOs and
/dev/zero in the kernel's folder and in the hand-in, print huge outputs of every kind, fill
/tmp, /dev/shm, the scratch folder and its inodes, look for NBGRADER_* and hidden tests, carry
XSS payloads into the feedback page (opened in headless Chromium), and use bad or glob-like
folder names. Each case asserts: score no higher than an honest answer's, or flagged, or
harmless; a decoy tree outside DIR hashes the same before and after; other students' grades
are intact.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import os
import shutil
import stat
import threading
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import TOY, copy_toy, read_csv
from submissions import read_by_student, run_grader
from test_hostile import _solved, autograde_args

from grader.files import (
    UnsafeFile,
    copy_hand_in,
    name_problem,
    read_bytes,
    safe_name,
    write_atomic,
)
from grader.integrity.sanitize import sanitize_notebook, unsafe_target

SECRET = "DECOY-SECRET-4711"  # in the decoy tree; must never reach DIR or a feedback page
AS_ROOT = os.geteuid() == 0
needs_sandbox = pytest.mark.needs_sandbox


# ----------------------------------------------------------------------------- unit tests


@pytest.mark.parametrize("name", ["alice", "s123456", "jane.doe@uni.edu", "a_b-c+d", "ex1"])
def test_good_names_pass(name):
    assert name_problem(name) is None
    assert safe_name(name) == name


@pytest.mark.parametrize("name", ["*", "[gx]ood", "a?", ".", "..", "a/b", "a b", "-rf", "",
                                  ".hidden", "x" * 101, "bad\udcff", b"bad\xff", "tab\t",
                                  "quote'", "semi;colon", "é"])
def test_bad_names_are_refused(name):
    assert name_problem(name) is not None
    if isinstance(name, str):
        assert safe_name(name) == ascii(name)  # printable, unambiguous, never a bare glob


@pytest.fixture
def decoy(tmp_path) -> Path:
    """A tree outside every grading folder that links will point at."""
    root = tmp_path / "decoy"
    (root / "sub").mkdir(parents=True)
    (root / "secret.txt").write_text(SECRET)
    (root / "victim.txt").write_text("do not overwrite me\n")
    (root / "sub" / "deep.txt").write_text(SECRET * 2)
    return root


def tree_hash(root: Path) -> dict[str, str]:
    """Every entry under root (links as their target text, never followed)."""
    digest = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                digest[str(path.relative_to(root))] = "link:" + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                digest[str(path.relative_to(root))] = hashlib.sha256(
                    path.read_bytes()).hexdigest() + f":{stat.S_IMODE(info.st_mode):o}"
            else:
                digest[str(path.relative_to(root))] = f"mode:{info.st_mode:o}"
    return digest


def plant_hostile_hand_in(folder: Path, decoy: Path) -> None:
    """Links, a FIFO, a /dev/zero link, a link to a folder and a hard link next to a notebook."""
    os.symlink(decoy / "secret.txt", folder / "data.csv")
    os.symlink("/dev/zero", folder / "zero.bin")
    os.mkfifo(folder / "pipe")
    os.symlink(decoy, folder / "dirlink")
    os.link(decoy / "secret.txt", folder / "hard.txt")  # same file system as the decoy


def test_copy_hand_in_copies_plain_files_and_refuses_the_rest(tmp_path, decoy):
    src = tmp_path / "hand_in"
    (src / "nested").mkdir(parents=True)
    (src / "toy.ipynb").write_text("{}")
    (src / "nested" / "notes.txt").write_text("mine")
    plant_hostile_hand_in(src, decoy)
    before = tree_hash(decoy)
    refused = copy_hand_in(src, tmp_path / "staged")  # must not block on the FIFO or /dev/zero
    copied = sorted(str(p.relative_to(tmp_path / "staged"))
                    for p in (tmp_path / "staged").rglob("*"))
    assert copied == ["nested", "nested/notes.txt", "toy.ipynb"]
    assert len(refused) == 5 and all(n in " ".join(refused) for n in
                                     ("data.csv", "zero.bin", "pipe", "dirlink", "hard.txt"))
    assert tree_hash(decoy) == before


def test_read_bytes_never_follows_or_blocks(tmp_path, decoy):
    os.symlink(decoy / "secret.txt", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero")
    for name in ("link", "fifo", "zero"):
        with pytest.raises(UnsafeFile):
            read_bytes(tmp_path / name)
    (tmp_path / "big").write_bytes(b"x" * 2000)
    with pytest.raises(UnsafeFile, match="larger"):
        read_bytes(tmp_path / "big", limit=1000)


def test_write_atomic_replaces_a_link_instead_of_writing_through_it(tmp_path, decoy):
    before = tree_hash(decoy)
    os.symlink(decoy / "victim.txt", tmp_path / "toy.ipynb")
    write_atomic(tmp_path / "toy.ipynb", b"graded")
    assert not (tmp_path / "toy.ipynb").is_symlink()
    assert (tmp_path / "toy.ipynb").read_bytes() == b"graded"
    assert tree_hash(decoy) == before
    os.symlink(decoy, tmp_path / "linked_dir")
    with pytest.raises(UnsafeFile):  # a folder that is a link is not the grader's folder
        write_atomic(tmp_path / "linked_dir" / "x", b"no")


# XSS payloads: each tries to set the page title, write localStorage, call home and alert.
def _act(tag: str) -> str:
    return (f"document.title='PWNED-{tag}';localStorage.setItem('pwned','{tag}');"
            f"fetch('/hit/{tag}');alert('{tag}')")


MARKDOWN_PAYLOADS = {
    "md_script": f"<script>{_act('md_script')}</script>",
    "md_img": f'<img src="x" onerror="{_act("md_img")}">',
    "md_svg": f'<svg onload="{_act("md_svg")}"><circle r="5"/></svg>',
    "md_js_link": f"[click me](javascript:{_act('md_js_link')})",
    "md_js_entity_link": "[click me too](&#106;avascript:fetch('/hit/md_js_entity_link'))",
    "md_html_link": f'<a href="javascript:{_act("md_html_link")}">html link</a>',
    "md_iframe": f'<iframe srcdoc="<script>{_act("md_iframe")}</script>"></iframe>',
    "md_details": f'<details open ontoggle="{_act("md_details")}">x</details>',
    "md_style": f'<p style="background:url(javascript:{_act("md_style")})">styled</p>',
    "md_ref_link": f"[ref]\n\n[ref]: javascript:{_act('md_ref_link')}",
    "md_form": f'<form action="javascript:{_act("md_form")}"><button>go</button></form>',
}
SVG_PAYLOAD = (f'<svg xmlns="http://www.w3.org/2000/svg" onload="{_act("out_svg")}">'
               f"<script>{_act('out_svg2')}</script></svg>")
# (display call, payload): the kernel shows each payload as an output of the answer cell
OUTPUT_PAYLOADS = {
    "out_html": ("HTML", f'<img src=x onerror="{_act("out_html")}">'),
    "out_html_script": ("HTML", f"<script>{_act('out_html_script')}</script>"),
    "out_js": ("Javascript", _act("out_js")),
    "out_svg": ("SVG", SVG_PAYLOAD),
    "out_markdown": ("Markdown", f"[x](javascript:{_act('out_markdown')})"),
}
RAW_OUTPUTS = [  # display(data, raw=True, metadata=...): any mime type, any metadata
    ({"image/png": "iVBORw0KGgo=", "text/plain": "img"},
     {"image/png": {"width": f'1 onerror="{_act("out_meta")}"'}}),
    ({"application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2,
                                                   "version_minor": 0},
      "text/plain": "w"}, {}),
    ({"text/html": f"<a href='javascript:{_act('out_raw_link')}'>raw link</a>",
      "text/plain": "l"}, {}),
]


def xss_markdown() -> str:
    return "\n\n".join(MARKDOWN_PAYLOADS.values())


def xss_code() -> str:
    lines = ["from IPython.display import HTML, SVG, Javascript, Markdown, display"]
    lines += [f"display({kind}({payload!r}))" for kind, payload in OUTPUT_PAYLOADS.values()]
    lines += [f"display({data!r}, raw=True, metadata={meta!r})" for data, meta in RAW_OUTPUTS]
    return "\n".join(lines) + "\n\ndef double(x):\n    return 2 * x\n"


class _ActiveParts(HTMLParser):
    """Scripts, event-handler attributes and javascript: URLs in an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for key, value in attrs:
            image = tag == "img" and key == "src" and (value or "").startswith(
                ("data:image/png;", "data:image/jpeg;"))  # how the page shows PNG outputs
            if key.startswith("on") or (key in ("href", "src", "action", "formaction")
                                         and unsafe_target(value or "") and not image):
                self.found.append(f"<{tag} {key}={value!r}>")
        if tag in ("svg", "iframe", "object", "embed"):
            self.found.append(f"<{tag}>")

    def handle_data(self, data):
        if self._in_script and "PWNED" in data:
            self.found.append(f"<script>{data[:80]}")

    def handle_endtag(self, tag):
        self._in_script = False


def active_parts(page: str) -> list[str]:
    parser = _ActiveParts()
    parser.feed(page)
    return parser.found


def test_sanitize_removes_every_payload():
    """Payloads in a written answer and in outputs of every active type; the page nbconvert
    renders from the sanitised notebook has no script, handler or javascript: URL left."""
    from nbconvert import HTMLExporter

    nb = _solved_toy_with({"double": xss_code()}, explain=xss_markdown())
    outputs = [nbformat.v4.new_output("display_data", data={
        {"HTML": "text/html", "Javascript": "application/javascript", "SVG": "image/svg+xml",
         "Markdown": "text/markdown"}[kind]: payload, "text/plain": "ok"})
        for kind, payload in OUTPUT_PAYLOADS.values()]
    outputs += [nbformat.v4.new_output("display_data", data=data, metadata=meta)
                for data, meta in RAW_OUTPUTS]
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "double":
            cell.outputs = outputs
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    raw_page = HTMLExporter().from_notebook_node(copy.deepcopy(nb))[0]
    assert len(active_parts(raw_page)) >= 8  # the payloads are live without sanitising
    page = HTMLExporter().from_notebook_node(sanitize_notebook(nb))[0]
    assert active_parts(page) == []
    assert "click me" in page and "html link" in page  # the answer is still readable
    assert "widget-state" not in page


def _solved_toy_with(overrides: dict[str, str], explain: str | None = None,
                     root: Path | None = None):
    """The released toy notebook of `root` solved, with overrides; without a root (no
    release made) the instructor's own notebook stands in."""
    nb = _solved(root) if root else nbformat.read(TOY / "solutions" / "toy" / "toy.ipynb",
                                                  as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in overrides:
            cell.source = overrides[gid]
        if gid == "explain" and explain is not None:
            cell.source = explain
    return nb


# ----------------------------------------------------------------------------- one graded run

DOUBLE = "\n\ndef double(x):\n    return 2 * x\n"


def answers(work: Path, decoy: Path) -> dict[str, str]:
    """student -> source of the `double` answer cell (square stays the honest solution)."""
    return {
        "good": DOUBLE,
        "wrong": "def double(x):\n    return 0\n",
        # links, a FIFO and /dev/zero left in the kernel's working folder
        "writeback": (
            "import os\n"
            f"for name, target in [('toy.ipynb', {str(decoy / 'victim.txt')!r}),\n"
            f"        ('.bashrc', {str(decoy / 'victim.txt')!r}),\n"
            f"        ('gradebook.db', {str(work / 'gradebook.db')!r}),\n"
            f"        ('toy.html', {str(decoy / 'victim.txt')!r}), ('rootlink', '/'),\n"
            "        ('zero', '/dev/zero')]:\n"
            "    try:\n        os.symlink(target, name)\n"
            "    except OSError as e:\n        print('link', name, e.errno)\n"
            "os.mkfifo('fifo')\nopen('left_behind.txt', 'w').write('x')\n" + DOUBLE),
        # huge outputs of every kind; the answers are right
        "huge_error": DOUBLE + "raise ValueError('E' * 30_000_000)\n",
        # 40 frames, each showing a 200 kB source line
        "huge_traceback": DOUBLE + "def f(n):\n    return f(n - 1) if n else 1 / 0  # "
                          + "F" * 200_000 + "\n\nf(40)\n",
        "huge_metadata": "from IPython.display import display\n"
                         "display({'text/plain': 'x'}, raw=True, "
                         "metadata={'m': 'M' * 5_000_000})\n" + DOUBLE,
        "display_updates": "from IPython.display import display, update_display\n"
                           "for _ in range(150):\n    display('a', display_id='d')\n"
                           "for _ in range(20):\n    update_display({'text/plain': 'U' * 150_000},"
                           " display_id='d', raw=True)\n" + DOUBLE,
        "many_outputs": "from IPython.display import display\n"
                        "for i in range(600):\n    display(i)\n" + DOUBLE,
        "huge_html": "from IPython.display import HTML, display\n"
                     "display(HTML('<b>x</b>' * 1_000_000))\n" + DOUBLE,
        # filling every writable place
        "fill_disk": (
            "import os\ndef fill(folder):\n    try:\n"
            "        with open(os.path.join(folder, 'fill.bin'), 'wb') as f:\n"
            "            while True:\n                f.write(b'\\0' * 2**20)\n"
            "    except OSError as e:\n        print(folder, 'full', e.errno)\n"
            "for d in ['/tmp', '/dev/shm', os.path.expanduser('~')]:\n    fill(d)\n" + DOUBLE),
        "fill_inodes": (
            "import os\ntry:\n    for i in range(100_000):\n"
            "        open(f'/tmp/f{i}', 'w').close()\n"
            "except OSError as e:\n    print('inodes out after', i, e.errno)\n" + DOUBLE),
        "fill_runtime": (
            "import os, sys\nrt = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])\n"
            "try:\n    with open(os.path.join(rt, 'junk.bin'), 'wb') as f:\n"
            "        for _ in range(64):\n            f.write(b'\\0' * 2**20)\n"
            "    print('runtime folder WRITTEN')\n"
            "except OSError as e:\n    print('runtime folder refused', e.errno)\n" + DOUBLE),
        # what the kernel can see: no NBGRADER_*, no notebook with hidden tests
        "env_probe": (
            # the Python install and the venv are mounted read-only at their own paths (under
            # /tmp when the repository is cloned there): installed packages' own sample
            # notebooks are not the course's, so the walk skips those mounts
            "import os, sys\nnb_env = sorted(k for k in os.environ if k.startswith('NBGRADER'))\n"
            "skip = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}\n"
            "found = []\nfor top in ['/home', '/tmp', '/dev/shm', os.getcwd()]:\n"
            "    for dirpath, dirs, files in os.walk(top):\n"
            "        dirs[:] = [d for d in dirs\n"
            "                   if os.path.realpath(os.path.join(dirpath, d)) not in skip]\n"
            "        found += [os.path.join(dirpath, f) for f in files\n"
            "                  if f.endswith('.ipynb')]\n"
            "hidden = [p for p in found if 'HIDDEN' in open(p, errors='replace').read()]\n"
            "print('NBGRADER:', nb_env, 'NOTEBOOKS:', found, 'HIDDEN:', hidden,\n"
            "      'CWD:', os.getcwd(), sorted(os.listdir('.')))\n" + DOUBLE),
        "xss": xss_code(),
    }


# student -> (flags in grades.csv, autograded points out of 3)
EXPECTED = {
    "good": ("", 3),
    "wrong": ("", 2),
    "writeback": ("", 3),
    "handin_links": ("unsafe-file", 3),
    "notebook_link": ("missing-notebook;unsafe-file", 0),
    "huge_error": ("output-truncated", 3),
    "huge_traceback": ("output-truncated", 3),
    "huge_metadata": ("output-truncated", 3),
    "display_updates": ("output-truncated", 3),
    "many_outputs": ("output-truncated", 3),
    "huge_html": ("output-truncated", 3),
    "fill_disk": ("disk-limit", 3),
    # bwrap cannot limit a tmpfs's inodes: the monitor stops the kernel past MAX_INODES (the
    # kernel's later cells score 0), and the trusted verdict's sandboxed process too (issue 21:
    # it has the kernel's limits), which runs the answer cells again without the one it was
    # stopped in: that cell's function is undefined there as well (2 of 3, no mismatch)
    "fill_inodes": ("disk-limit", 2),
    # the kernel's runtime folder lies in the /tmp of nbgrader's child (as root a sized tmpfs);
    # the child is never root, so the folder is not locked: the monitor sees it grow and stops
    # the kernel (disk-limit). The payload reads the kernel's own argv (`-f`), which the
    # trusted verdict's process does not have: there its answer cell stops at that line and the
    # function after it is never defined (2 of 3), while the kernel, if it got to the test
    # before the monitor stopped it, claimed 3 (verdict-mismatch; see RACY)
    "fill_runtime": ("disk-limit;verdict-mismatch", 2),
    "env_probe": ("", 3),
    "xss": ("", 3),
}
# flags that may also come out: the kernel's race with the monitor's 0.25 s polls
RACY = {("fill_runtime", "disk-limit")}
BAD_FOLDERS = {"*": "star", "[gx]ood": "glob", "a b": "space", "-rf": "dash"}
BAD_BYTES = b"bad\xff\xfe"  # not UTF-8


def build_submissions(root: Path, decoy: Path, work: Path) -> Path:
    submissions = root / "submissions"
    sources = answers(work, decoy)
    for student in EXPECTED:
        folder = submissions / student / "toy"
        folder.mkdir(parents=True)
        nb = _solved_toy_with({"double": sources.get(student, DOUBLE)},
                              explain=xss_markdown() if student == "xss" else None, root=root)
        if student == "notebook_link":
            nbformat.write(nb, decoy / "linked.ipynb")
            os.symlink(decoy / "linked.ipynb", folder / "toy.ipynb")
            continue
        nbformat.write(nb, folder / "toy.ipynb")
        if student == "handin_links":
            plant_hostile_hand_in(folder, decoy)
    good = _solved(root)
    for name in BAD_FOLDERS:
        (submissions / name / "toy").mkdir(parents=True)
        nbformat.write(good, submissions / name / "toy" / "toy.ipynb")
    bad = os.path.join(os.fsencode(submissions), BAD_BYTES)
    os.makedirs(os.path.join(bad, b"toy"))
    nbformat.write(good, os.fsdecode(os.path.join(bad, b"toy", b"toy.ipynb")))
    (decoy / "other" / "toy").mkdir(parents=True)
    nbformat.write(good, decoy / "other" / "toy" / "toy.ipynb")
    os.symlink(decoy / "other", submissions / "linked_student")
    return submissions


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("hostile_files")
    root, work, decoy = base / "root", base / "work", base / "decoy"
    copy_toy(root)
    assert run_grader("release", "--root", str(root)).returncode == 0
    (decoy / "sub").mkdir(parents=True)
    (decoy / "secret.txt").write_text(SECRET)
    (decoy / "victim.txt").write_text("do not overwrite me\n")
    submissions = build_submissions(root, decoy, work)
    before = {"decoy": tree_hash(decoy), "submissions": tree_hash(submissions)}
    result = run_grader(*autograde_args(root, submissions, work, "--jobs", "2"), timeout=900)
    return {"work": work, "decoy": decoy, "submissions": submissions, "result": result,
            "before": before}


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_run_exits_0(graded):
    result = graded["result"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_flags_and_scores(graded, student):
    flags, points = EXPECTED[student]
    row = read_by_student(graded["work"] / "grades.csv")[student]
    assert row["flags"] == flags or (student, row["flags"]) in RACY, (student, row)
    cells = [r for r in read_csv(graded["work"] / "grades_by_cell.csv")
             if r["student_id"] == student and r["grade_id"].startswith("test_")]
    assert sum(float(r["score"]) for r in cells) == points, (student, cells)


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_decoy_and_submissions_unchanged(graded):
    assert tree_hash(graded["decoy"]) == graded["before"]["decoy"]
    assert tree_hash(graded["submissions"]) == graded["before"]["submissions"]


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_nothing_the_kernel_or_hand_in_left_reaches_dir(graded):
    """No link, FIFO or device anywhere in DIR; autograded/ and feedback/ hold only the
    notebook and its page; the decoy's secret is nowhere in DIR."""
    work = graded["work"]
    for dirpath, dirnames, filenames in os.walk(work, followlinks=False):
        for name in dirnames + filenames:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), os.path.join(dirpath, name)
    for student in ("writeback", "handin_links"):
        assert sorted(p.name for p in (work / "autograded" / student / "toy").iterdir()) == [
            "toy.ipynb"]
        assert sorted(p.name for p in (work / "feedback" / student / "toy").iterdir()) == [
            "toy.html"]
    assert sorted(p.name for p in (work / "submitted" / "handin_links" / "toy").iterdir()) \
        == ["toy.ipynb"]
    for path in work.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".html", ".csv", ".txt", ".log"):
            assert SECRET not in path.read_text(errors="replace"), path


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_refused_hand_in_entries_are_listed_for_review(graded):
    review = read_by_student(graded["work"] / "review.csv")
    assert "unsafe-file" in review["handin_links"]["flags"]
    log = graded["result"].stdout
    assert "graded handin_links/toy" in log
    warning = [line for line in log.splitlines()
               if line.startswith("warning: handin_links/toy: not copied (refused: ")]
    assert warning and all(name in warning[0] for name in ("data.csv", "zero.bin", "pipe",
                                                            "dirlink", "hard.txt")), log


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_outputs_are_capped_in_notebook_and_feedback(graded):
    work = graded["work"]
    for student in ("huge_error", "huge_traceback", "huge_metadata", "display_updates",
                    "many_outputs", "huge_html"):
        notebook = work / "autograded" / student / "toy" / "toy.ipynb"
        feedback = work / "feedback" / student / "toy" / "toy.html"
        assert notebook.stat().st_size < 3_000_000, student
        assert feedback.stat().st_size < 4_000_000, student
    nb = nbformat.read(work / "autograded" / "many_outputs" / "toy" / "toy.ipynb", as_version=4)
    assert max(len(c.get("outputs", [])) for c in nb.cells) <= 101  # 100 + the note
    nb = nbformat.read(work / "autograded" / "huge_error" / "toy" / "toy.ipynb", as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError"  # kept, shortened


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_disk_filling_is_bounded(graded):
    nb = nbformat.read(graded["work"] / "autograded" / "fill_disk" / "toy" / "toy.ipynb",
                       as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for folder in ("/tmp", "/dev/shm", "/home/student"):
        assert f"{folder} full 28" in text, text  # ENOSPC at the tmpfs size, not the host's
    report = nb.metadata["grader_run"]
    assert set(report["disk_full"]) == {"/tmp", "/dev/shm", "/home/student"}


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_kernel_sees_no_nbgrader_env_and_no_hidden_tests(graded):
    nb = nbformat.read(graded["work"] / "autograded" / "env_probe" / "toy" / "toy.ipynb",
                       as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "NBGRADER: [] NOTEBOOKS: [] HIDDEN: [] CWD: /home/student ['.ipython']" in text, text


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_runtime_folder_is_bounded_once_the_kernel_runs(graded):
    """The kernel's runtime folder (IPC sockets) lies in nbgrader's child's /tmp (as root a
    sized tmpfs; as a normal user the machine's): the monitor sees it grow, stops the kernel
    and reports it."""
    nb = nbformat.read(graded["work"] / "autograded" / "fill_runtime" / "toy" / "toy.ipynb",
                       as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    # the payload ran to its print, or (a loaded machine writes slowly) the monitor stopped the
    # kernel in the middle of its write: the cell ends in an error output then
    stopped = any(o.get("output_type") == "error" for o in outputs)
    assert "runtime folder" in text or stopped, text
    flags = read_by_student(graded["work"] / "grades.csv")["fill_runtime"]["flags"].split(";")
    assert "disk-limit" in flags


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_bad_names_are_skipped_flagged_and_written_safely(graded):
    work = graded["work"]
    grades = read_by_student(work / "grades.csv")
    review = read_by_student(work / "review.csv")
    refused = [ascii(n) for n in BAD_FOLDERS] + [ascii(os.fsdecode(BAD_BYTES)),
                                                 "linked_student"]
    for student_id in refused:
        assert grades[student_id]["flags"] == "bad-name", (student_id, grades.get(student_id))
        assert grades[student_id]["score"] == "0" and grades[student_id]["max_score"] == "4"
        assert review[student_id]["flags"] == "bad-name"
    # nothing of theirs was staged or graded; the others' results are intact
    assert sorted(p.name for p in (work / "submitted").iterdir()) == sorted(EXPECTED)
    assert grades["good"]["score"] == "3" and grades["good"]["flags"] == ""
    for student in EXPECTED:
        if student not in ("notebook_link",):
            assert (work / "autograded" / student / "toy" / "toy.ipynb").exists(), student


# ----------------------------------------------------------------------------- XSS in Chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves a page's folder (and formgrader's own static files), records /hit calls."""

    hits: list[str] = []
    static = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/hit"):
            _Recorder.hits.append(self.path)
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def translate_path(self, path):
        prefix = "/formgrader/static/"
        if path.startswith(prefix) and self.static:
            return os.path.join(self.static, path[len(prefix):].split("?")[0])
        return super().translate_path(path)

    def log_message(self, *args):
        pass


def formgrade_page(notebook: Path, folder: Path) -> tuple[Path, str]:
    """The page formgrader serves for one submission: nbgrader's SubmissionHandler renders the
    autograded notebook with its `formgrade` template and the course's config. Returns the
    page and formgrader's static folder (its scripts run in the page)."""
    from nbconvert import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    from grader.bridge.nbgrader_config import apply_grading_settings

    c = Config()
    apply_grading_settings(c)
    c.HTMLExporter.template_name = "formgrade"
    c.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": "toy", "notebook_id": "toy", "submission_id": "s1",
                 "index": 0, "total": 1, "base_url": "", "student": "xss", "last_name": None,
                 "first_name": None, "notebook_path": "/notebooks/toy.ipynb"}
    html, _ = HTMLExporter(config=c).from_filename(str(notebook), resources=resources)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy.html").write_text(html, encoding="utf-8")
    return folder, handlers.static_path


def open_and_poke(folder: Path, static: str = "") -> dict:
    """Serve `folder`/toy.html on 127.0.0.1, open it in Chromium with every other request
    blocked, fire mouse/focus/click/toggle events on every element, click every link and
    button; what the page did."""
    from playwright.sync_api import sync_playwright

    _Recorder.hits, _Recorder.static = [], static
    handler = lambda *a, **k: _Recorder(*a, directory=str(folder), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    seen = {"dialogs": [], "requests": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
                base) else route.abort())
            page.goto(base + "toy.html")
            page.wait_for_timeout(1000)
            page.evaluate("""() => { for (const el of document.querySelectorAll('*')) {
                for (const t of ['mouseover', 'focus', 'click', 'toggle', 'load', 'error'])
                    el.dispatchEvent(new Event(t)); } }""")
            for link in page.query_selector_all("a, button"):
                try:
                    link.click(timeout=500, no_wait_after=True)
                except Exception:  # noqa: BLE001 - hidden or detached: the event was sent
                    pass
                if not page.url.startswith(base + "toy.html"):
                    page.goto(base + "toy.html")
            page.wait_for_timeout(1000)
            seen["title"] = page.title()
            seen["stored"] = page.evaluate("localStorage.getItem('pwned')")
            # handlers and javascript: URLs carrying a payload (the page's own, e.g.
            # formgrader's onclick="toggle_name(true)", carry none of the payloads' words)
            seen["handlers"] = page.evaluate("""() => [...document.querySelectorAll('*')].flatMap(
                el => [...el.attributes].filter(a => (a.name.startsWith('on')
                    || /^\\s*javascript:/i.test(a.value)) && /PWNED|pwned|hit/.test(a.value))
                    .map(a => el.tagName + ' ' + a.name))""")
            seen["text"] = page.evaluate("document.body.innerText")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    seen["hits"] = list(_Recorder.hits)
    return seen


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed "
                    "(make system-deps)")
@pytest.mark.parametrize("page", ["feedback", "formgrade"])
def test_xss_does_not_execute_in_feedback_or_formgrader(graded, page, tmp_path):
    """The `xss` hand-in's feedback page, and the page formgrader renders for it (with
    formgrader's own scripts), in Chromium: no payload sets the title, writes localStorage,
    calls the recording server or opens a dialog; no handler or javascript: URL is left."""
    if page == "feedback":
        seen = open_and_poke(graded["work"] / "feedback" / "xss" / "toy")
    else:
        notebook = graded["work"] / "autograded" / "xss" / "toy" / "toy.ipynb"
        seen = open_and_poke(*formgrade_page(notebook, tmp_path / "formgrade"))
    assert not seen["title"].startswith("PWNED"), seen["title"]
    assert seen["stored"] is None and seen["dialogs"] == [] and seen["hits"] == []
    assert not [u for u in seen["requests"] if "/hit" in u], seen["requests"]
    assert seen["handlers"] == []  # nothing left that a click or hover could run
    # the student's written answer is still there for the instructor to read
    assert "click me" in seen["text"] and "html link" in seen["text"]


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed "
                    "(make system-deps)")
def test_the_browser_check_sees_payloads_that_were_not_sanitised(graded, tmp_path):
    """Test of the test: the same hand-in rendered WITHOUT sanitising runs its payloads."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(graded["work"] / "submitted" / "xss" / "toy" / "toy.ipynb", as_version=4)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "toy.html").write_text(HTMLExporter().from_notebook_node(nb)[0])
    seen = open_and_poke(tmp_path / "raw")
    assert seen["title"].startswith("PWNED") and seen["hits"] and seen["dialogs"]


@pytest.mark.slow  # grades the hostile toy class end to end
@needs_sandbox
def test_export_keeps_the_bad_name_rows(graded):
    """`export` (after hand grading) rewrites grades.csv from the gradebook and the run record:
    the refused folders' rows stay, the feedback pages are rebuilt from the sanitised notebook.
    Runs last: it rewrites DIR's CSVs and feedback."""
    work = graded["work"]
    before = read_by_student(work / "grades.csv")
    result = run_grader("export", "--workdir", str(work))
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_by_student(work / "grades.csv") == before
    page = (work / "feedback" / "xss" / "toy" / "toy.html").read_text()
    assert active_parts(page) == [] and "click me" in page
