"""grader/integrity/similarity.py: normalised tokens, winnowing, and the threshold's calibration.

Fast and kernel-free except the last test, which runs `autograde` and `similarity` on the toy
course once (marked slow). The calibration: the independently written correct answers of
tests/variants_ex*.py (and the solution) are never reported against each other or against the
library; renamed/reordered/reformatted copies are, whether written by hand or derived from the
current library (tests/similarity_copies.py), made by `disguise` below from every answer cell,
or a correct variant that rearranges another answer (REARRANGED). Run with -s to see the
figures (highest independent score and lowest copy score per assignment).
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import itertools
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import copy_toy, no_sandbox_args, read_csv
from similarity_copies import COPIES, disguise_tree
from submissions import (
    REPO,
    make_submission,
    release_path,
    run_grader,
    solution_path,
    write_submissions,
)

import grader.integrity.similarity as sim
from grader.bridge.course import list_assignments

LIBRARY = REPO / "src" / "resnet_course"
# Correct variants that are not independent answers: they were written as minimal
# rearrangements of another answer, to test that the hidden tests do not depend on how code is
# arranged, not as a second author's work. Reporting them is right (a student who handed in
# one would be a copier), so the calibration does not count them as independent: their copied
# cells must be reported against what they rearrange, and their other cells must not be.
REARRANGED = {
    # tests/variants_ex2.py: its ResidualBlock is the solution's with linear2 created before
    # linear1 and forward's two lines inlined (0.83 against it); its residual_mlp is
    # module_style's with the layers registered in reverse (0.96 against it).
    ("ex2_identity", "reversed_registration"): {"ResidualBlock": sim.SOLUTION,
                                                "residual_mlp": "module_style"},
    # tests/variants_ex5.py: written for its evaluate (labels compared on the host); its
    # train_one_epoch is the solution's with two variables renamed, the logits inlined and the
    # comments dropped (0.91 against it).
    ("ex5_gpu_training", "host_side_comparison_and_device_sum"): {
        "train_one_epoch": sim.SOLUTION},
}
# Rearranged copies the report is known to miss, so they are neither independent answers nor
# required finds. None now: reversed_registration's ResidualBlock (linear2 created before linear1,
# forward's two lines inlined with the sum's operands swapped) scored 0.79 against the solution's,
# under the token-level report's threshold of 0.81; after the syntax-tree normalisation it scores
# 0.806, above today's threshold.
MISSED: set[tuple[str, str, str]] = set()


# ---------------------------------------------------------------- tokens


def texts(source: str) -> list[str]:
    return [t.text for t in sim.tokenise(source)]


def test_renaming_comments_docstrings_and_layout_do_not_change_the_tokens() -> None:
    original = '''
def relu_sum(a, b):
    """Sum, then ReLU."""
    total = a + b  # (N, D)
    return F.relu(total)
'''
    disguised = '''
def my_function(x,
                y,):
    # my own comment
    s = (x + y); return F.relu(s)
'''
    assert texts(original) == texts(disguised)
    assert texts(original)[:3] == ["def", "V", "("]
    assert texts("if a:\n    b = 1\n") == texts("if a: b = 1")


def test_names_used_are_kept_and_literals_canonicalised() -> None:
    assert texts("x = F.relu(y)") != texts("x = torch.sigmoid(y)")  # what the code does
    assert texts("n = 3\ns = 'a'") == texts("n = 7.5\ns = f'{n} b'")
    assert texts("def f(a: int, b: list[int] = None) -> dict:\n    c: float = a\n") == \
        texts("def f(a, b=None):\n    c = a\n")


def test_context_names_are_canonicalised_like_the_cells_own() -> None:
    cell = "model = ResidualBlock(4)"
    assert "ResidualBlock" in texts(cell)
    assert [t.text for t in sim.tokenise(cell, frozenset({"ResidualBlock"}))] == \
        ["V", "=", "V", "(", "NUM", ")", ";"]


def test_broken_code_and_magics_still_tokenise() -> None:
    assert texts("%matplotlib inline\ndef f(x):\n    return x +")  # a syntax error
    assert texts("s = 'unterminated")[:2] == ["V", "="]
    assert sim.tokenise("") == []


def test_token_lines_point_into_the_cell() -> None:
    tokens = sim.tokenise("a = 1\n\n# comment\nb = a\n")
    assert {t.line for t in tokens if t.text == "V"} == {1, 4}


# ---------------------------------------------------------------- fingerprints


def test_winnowing_finds_every_match_of_k_plus_window_minus_one_tokens() -> None:
    shared = "z = torch.relu(self.linear2(x) + x) * scale - offset\n"
    a = "q = 1\nfor i in range(3):\n    q = q * 2\n" + shared
    b = "while True:\n    break\nprint('x', 'y')\n" + shared
    assert len(sim.tokenise(shared)) >= sim.K + sim.WINDOW - 1
    fa = {f.hash for f in sim.fingerprint(a)}
    fb = {f.hash for f in sim.fingerprint(b)}
    assert fa & fb
    grams = sim.kgrams(sim.tokenise(a))
    chosen = sim.winnow(grams)
    assert len(chosen) < len(grams)
    for start in range(len(grams) - sim.WINDOW + 1):  # one fingerprint in every window
        assert any(f in chosen for f in grams[start:start + sim.WINDOW])


def test_given_code_is_left_out() -> None:
    stub = 'def plain_mlp(in_features, width, depth, num_classes):\n    """Doc."""\n' \
        "    raise NotImplementedError()\n"
    given = sim.given_hashes([stub])
    assert sim.fingerprint(stub, given) == []
    answer = stub.replace("raise NotImplementedError()", "return nn.Sequential("
                          "nn.Linear(in_features, num_classes), nn.ReLU(), nn.Identity())")
    assert 0 < len(sim.fingerprint(answer, given)) < len(sim.fingerprint(answer))


def test_line_ranges() -> None:
    assert sim.line_ranges([7, 3, 4, 5, 9, 10]) == "3-5,7,9-10"
    assert sim.line_ranges([]) == ""


def doc(owner: str, source: str, cell: str = "f", kind: str = sim.STUDENT) -> sim.Document:
    return sim.Document(owner, "ex", cell, sim.fingerprint(source), kind)


LONG = '''
def f(model, loader, device):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            correct += (model(X).argmax(dim=1) == y).sum().item()
            total += len(y)
    return correct / total
'''
OTHER = '''
def f(model, loader, device):
    was = model.training
    model.train(False)
    hits = []
    for batch in loader:
        hits.append(model(batch[0]).max(1).indices.cpu().eq(batch[1]).float())
    model.train(was)
    return torch.cat(hits).mean().item()
'''


def test_find_matches_reports_pairs_once_and_flags_both_students() -> None:
    copied = LONG.replace("correct", "ok").replace("total", "n")
    matches = sim.find_matches([doc("ann", LONG), doc("bob", copied), doc("cat", OTHER)], [])
    assert [(m.student_id, m.source, m.score) for m in matches] == [("ann", "bob", 1.0)]
    assert matches[0].lines == "2-10" and matches[0].flag == sim.STUDENT_FLAG  # whole cell
    assert sim.flags_by_submission(matches) == {("ann", "ex"): {sim.STUDENT_FLAG},
                                                ("bob", "ex"): {sim.STUDENT_FLAG}}


def test_references_are_matched_by_cell_or_as_library() -> None:
    students = [doc("ann", LONG), doc("bob", OTHER)]
    references = [doc(sim.SOLUTION, LONG, "g", sim.SOLUTION),
                  doc(sim.LIBRARY, "x = 1\n" + OTHER, "m.py", sim.LIBRARY)]
    matches = sim.find_matches(students, references)
    assert [(m.student_id, m.kind, m.source_cell) for m in matches] == \
        [("bob", sim.LIBRARY, "m.py")]  # the solution of another cell is not compared
    assert sim.flags_by_submission(matches) == {("bob", "ex"): {sim.REFERENCE_FLAG}}
    # a student who happens to be called "library" is still a student
    pair = sim.find_matches([doc("ann", OTHER), doc("library", OTHER)], [])
    assert [m.flag for m in pair] == [sim.STUDENT_FLAG]


def test_the_toy_copies_of_the_end_to_end_test() -> None:
    assert sim.score(SQUARE, SQUARE_COPY) >= sim.THRESHOLD
    assert sim.score(TOY_LIBRARY, DOUBLE_COPY) >= sim.THRESHOLD
    assert sim.score(SQUARE, SQUARE_OWN) < sim.THRESHOLD


def test_a_cell_pasted_from_two_library_files_is_scored_against_both() -> None:
    helper = '''
def check(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if value > 2 ** 31 - 1:
        raise OverflowError(f"{name} is too large for an int32: {value}")
    return value
'''
    cell = helper + LONG  # the student pastes the helper from one file, f from another
    # library files are longer than a cell: each holds more than the student took from it
    files = [doc(sim.LIBRARY, LONG + TOY_LIBRARY, "lib/train.py", sim.LIBRARY),
             doc(sim.LIBRARY, helper + SQUARE, "lib/validate.py", sim.LIBRARY),
             doc(sim.LIBRARY, OTHER, "lib/other.py", sim.LIBRARY)]
    student = doc("ann", cell)
    assert all(sim.compare(student, f) is None for f in files)  # neither file alone
    match = sim.compare_library(student, files)
    assert match is not None and match.score >= sim.THRESHOLD  # one k-gram spans the seam
    assert match.source_cell == "lib/train.py + lib/validate.py"  # most shared first
    assert len(match.source_lines.split("; ")) == 2
    assert [m.source_cell for m in sim.find_matches([student], files)] == [match.source_cell]
    # a file that adds fewer than MIN_SHARED fingerprints of its own does not join
    assert sim.compare_library(doc("bob", "y = 2\n" + LONG), files).source_cell == \
        "lib/train.py"


def test_too_little_shared_code_is_not_reported() -> None:
    short = "def f(x):\n    return torch.device('cuda')\n"
    assert sim.find_matches([doc("ann", short), doc("bob", short)], []) == []


def test_a_passage_most_of_the_class_wrote_is_not_evidence() -> None:
    class_ = [doc(f"s{i:02}", LONG) for i in range(sim.COMMON_LIMIT + 1)]
    assert sim.find_matches(class_, []) == []
    assert len(sim.find_matches(class_[:sim.COMMON_LIMIT], [])) == 45  # 10 choose 2
    # ... but a whole class that copied the library is reported, every one of them
    library = [doc(sim.LIBRARY, LONG, "m.py", sim.LIBRARY)]
    assert {m.student_id for m in sim.find_matches(class_, library)} == \
        {d.owner for d in class_}


def test_student_files_are_data(tmp_path: Path) -> None:
    nb = make_submission("ex2_identity")
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert set(sim.answer_cells(sim.read_notebook(path))) == {
        "ResidualBlock", "zero_init_residual_", "residual_mlp", "PreActBlock", "preact_mlp"}
    (tmp_path / "link.ipynb").symlink_to(path)
    assert sim.read_notebook(tmp_path / "link.ipynb") is None  # a link is never followed
    (tmp_path / "sub" / "eve").mkdir(parents=True)
    (tmp_path / "sub" / "eve" / "ex").symlink_to(tmp_path, target_is_directory=True)
    linked = tmp_path / "sub" / "eve" / "ex" / "nb.ipynb"
    assert sim.read_notebook(linked) is not None
    assert sim.read_notebook(linked, tmp_path / "sub") is None  # nor a linked folder
    assert sim.read_notebook(path, tmp_path) is not None
    (tmp_path / "bad.ipynb").write_text("{not json")
    assert sim.read_notebook(tmp_path / "bad.ipynb") is None
    odd = {"cells": [None, {"cell_type": "code", "metadata": {"nbgrader": "x"}},
                     {"cell_type": "code", "source": ["a", 3],
                      "metadata": {"nbgrader": {"solution": True, "grade_id": "g"}}}]}
    assert sim.answer_cells(odd) == {"g": "a"}


def test_autograde_hook_adds_flags_and_never_fails_a_run(tmp_path: Path) -> None:
    class Outcome:  # the fields of grader.commands.autograde.Outcome the hook touches
        def __init__(self, flags):
            self.flags = flags

    work = tmp_path / "work"
    for student, source in (("ann", LONG), ("bob", LONG.replace("total", "n"))):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source, metadata={
            "nbgrader": {"solution": True, "grade_id": "f"}})]
        write_submissions(work / "submitted", "ex", {student: nb})
    outcomes = {("ann", "ex"): Outcome(["timeout"]), ("bob", "ex"): Outcome([])}
    logged = []
    sim.flag_similar(work, ["ex"], tmp_path / "solutions", outcomes, logged.append)
    assert [o.flags for o in outcomes.values()] == [["similar-to-student", "timeout"],
                                                    ["similar-to-student"]]
    assert "1 pair(s)" in logged[0] and (work / "similarity.csv").is_file()
    sim.flag_similar(tmp_path / "absent", ["ex"], tmp_path, outcomes, logged.append)
    assert logged[-1].startswith("warning: similarity report failed")
    assert outcomes[("bob", "ex")].flags == ["similar-to-student"]


def test_side_by_side_pages_escape_student_code(tmp_path: Path) -> None:
    work = tmp_path / "work"
    hostile = LONG.replace("correct / total", "correct / total  # </pre><script>alert(1)</script>")
    for student, source in (("ann", LONG), ("b<o>b", hostile)):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source, metadata={
            "nbgrader": {"solution": True, "grade_id": "f"}})]
        write_submissions(work / "submitted", "ex", {student: nb})
    (work / "similarity").mkdir(parents=True)
    (work / "similarity" / "0009-stale.html").write_text("old")
    (work / "similarity" / "notes.txt").write_text("mine")
    matches = sim.similarity_report(work, ["ex"], None)
    assert len(matches) == 1
    rows = read_csv(work / "similarity.csv")
    page = work / rows[0]["report"]
    assert rows[0]["report"] == "similarity/0001-ex-f-ann-b_o_b.html" and page.is_file()
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "b&lt;o&gt;b" in text and "Content-Security-Policy" in text
    assert text.count('<tr class="match">') == 2 * 9  # lines 2-10 of each cell
    index = (work / "similarity" / "index.html").read_text()
    assert 'href="0001-ex-f-ann-b_o_b.html"' in index and "<o>" not in index
    assert sorted(p.name for p in (work / "similarity").iterdir()) == [
        "0001-ex-f-ann-b_o_b.html", "index.html", "notes.txt"]  # old pages gone, other files kept
    # a link where the pages go is not written through: the CSV is still written
    shutil.rmtree(work / "similarity")
    (work / "similarity").symlink_to(tmp_path, target_is_directory=True)
    (work / "similarity.csv").unlink()
    logged = []
    assert len(sim.similarity_report(work, ["ex"], None, logged.append)) == 1
    assert logged[0].startswith("warning: no side-by-side pages")
    assert (work / "similarity.csv").is_file() and not list(tmp_path.glob("*.html"))


def test_similarity_command_needs_an_autograde_workdir(tmp_path: Path, capsys) -> None:
    from grader.commands.cli import main

    assert main(["similarity", "--workdir", str(tmp_path)]) == 2
    assert "no assignments found" in capsys.readouterr().err


# ---------------------------------------------------------------- calibration


def variant_modules() -> dict[str, object]:
    """assignment id -> tests/variants_<ex>.py, for every assignment that has one."""
    found = {}
    for aid in list_assignments(REPO / "solutions"):
        try:
            found[aid] = importlib.import_module(f"variants_{aid.split('_')[0]}")
        except ModuleNotFoundError:
            continue
    return found


@functools.cache
def given(aid: str) -> set[int]:
    release = nbformat.read(release_path(aid), as_version=4)
    cells = sim.code_cells(release)
    return sim.given_hashes(cells, sim.context_names(cells))


def cells_of(owner: str, aid: str, nb, only: set[str] | None = None,
             kind: str = sim.STUDENT) -> dict[str, sim.Document]:
    docs = sim.notebook_documents(owner, aid, nb, given(aid), kind)
    return {d.cell: d for d in docs if only is None or d.cell in only}


def honest_answers(aid: str, module) -> dict[str, dict[str, sim.Document]]:
    """owner -> cell -> document: the solution and each independently written correct variant
    (only the cells it writes itself)."""
    solution = nbformat.read(solution_path(aid), as_version=4)
    answers = {sim.SOLUTION: cells_of(sim.SOLUTION, aid, solution, kind=sim.SOLUTION)}
    for variant, overrides in module.CORRECT.items():
        answers[variant] = cells_of(variant, aid, make_submission(aid, overrides), set(overrides))
    return answers


def library(aid: str) -> list[sim.Document]:
    return [sim.Document(d.owner, aid, d.cell, d.fingerprints, sim.LIBRARY, d.source)
            for d in sim.library_documents(LIBRARY, given(aid))]


def disguise(source: str) -> str:
    """A copy as a plagiarist makes it: names changed, independent statements reordered,
    reformatted by ast.unparse (comments and layout gone), new comments."""
    return disguise_tree(ast.parse(sim._clean(source)))


def _score(a: sim.Document, b: sim.Document) -> tuple[float, int]:
    shared = a.hashes & b.hashes
    return len(shared) / max(1, min(len(a.hashes), len(b.hashes))), len(shared)


@pytest.fixture(scope="module")
def classes() -> dict[str, dict]:
    """Per assignment: honest answers, the library, and the copies (hand-made and disguised)."""
    found = {}
    for aid, module in variant_modules().items():
        honest = honest_answers(aid, module)
        copies = []  # (name, student document, the document it copies)
        for name, (cid, cell, (kind, what), source) in COPIES.items():
            if cid != aid:
                continue
            student = cells_of(name, aid, make_submission(aid, {cell: source}), {cell})[cell]
            if kind == "library":
                original = next(d for d in library(aid) if d.cell.endswith("/" + what))
            else:
                original = honest[sim.SOLUTION if kind == "solution" else what][cell]
            copies.append((name, student, original))
        for (rid, variant), cells in REARRANGED.items():
            for cell, source in cells.items() if rid == aid else ():
                if (aid, variant, cell) in MISSED:
                    continue
                copies.append((f"rearranged {variant}", honest[variant][cell],
                               honest[source][cell]))
        for owner, answers in honest.items():
            for cell, original in answers.items():
                overrides = {cell: disguise(source_of(aid, owner, cell, module))}
                student = cells_of(f"copy-of-{owner}", aid, make_submission(aid, overrides),
                                   {cell})[cell]
                copies.append((f"disguised {owner}", student, original))
        found[aid] = {"honest": honest, "library": library(aid), "copies": copies}
    return found


def source_of(aid: str, owner: str, cell: str, module) -> str:
    if owner == sim.SOLUTION:
        return sim.answer_cells(nbformat.read(solution_path(aid), as_version=4))[cell]
    return module.CORRECT[owner][cell]


def test_every_assignment_with_variants_is_calibrated(classes: dict) -> None:
    assert {"ex1_degradation", "ex2_identity", "ex3_shortcuts", "ex4_image_resnets",
            "ex5_gpu_training"} <= set(classes)
    assert {aid for aid, *_ in COPIES.values()} <= set(classes)  # every hand-made copy is used


def library_match(student: sim.Document, original: sim.Document,
                  library_files: list[sim.Document]) -> sim.Match | None:
    """The student's match with `original` (a cell, or a library file: then with the whole
    library, and only if `original` is among the files it names)."""
    if original.kind != sim.LIBRARY:
        return sim.compare(student, original)
    match = sim.compare_library(student, library_files)
    return match if match and original.cell in match.source_cell.split(" + ") else None


def test_independent_correct_answers_are_not_reported(classes: dict) -> None:
    for aid, c in classes.items():
        honest, worst = c["honest"], (0.0, "")
        honest = {owner: cells for owner, cells in honest.items()
                  if (aid, owner) not in REARRANGED}
        pairs = [(a[cell], b[cell]) for a, b in itertools.combinations(honest.values(), 2)
                 for cell in set(a) & set(b)]
        for a, b in pairs:
            assert sim.compare(a, b) is None, (aid, a.owner, a.cell, b.owner, b.cell)
            worst = max(worst, (_score(a, b)[0], f"{a.owner}/{a.cell} ~ {b.owner}/{b.cell}"))
        for owner, cells in honest.items():
            for d in cells.values() if owner != sim.SOLUTION else ():
                assert sim.compare_library(d, c["library"]) is None, (aid, owner, d.cell)
                near = sim.compare_library(d, c["library"], 0.0)  # the score, reported or not
                if near is not None:
                    pairs.append((d, near))
                    worst = max(worst, (near.score, f"{owner}/{d.cell} ~ {near.source_cell}"))
        print(f"{aid}: {len(pairs)} independent pairs, highest score {worst[0]:.3f} ({worst[1]})")


def test_disguised_copies_are_reported(classes: dict) -> None:
    for aid, c in classes.items():
        lowest, too_short, by_hand = (1.0, ""), [], []
        for name, student, original in c["copies"]:
            if len(original.hashes) < sim.MIN_SHARED:  # a few tokens: no evidence either way
                assert name not in COPIES, name  # the hand-made copies are all long enough
                too_short.append(f"{original.owner}/{original.cell}")
                continue
            match = library_match(student, original, c["library"])
            assert match is not None, (aid, name, student.cell, _score(student, original))
            assert match.lines and match.source_lines
            lowest = min(lowest, (match.score, f"{name} {student.cell}"))
            if name in COPIES or name.startswith("rearranged "):
                by_hand.append(f"{name} {student.cell} {match.score:.3f}")
        print(f"{aid}: {len(c['copies'])} copies, lowest score {lowest[0]:.3f} ({lowest[1]}); "
              f"by hand: {', '.join(by_hand) or 'none'}; too short to judge: "
              f"{too_short or 'none'}")


def _pair(student: str, cell: str, source: str, source_cell: str) -> tuple:
    """A reported pair, the same whichever of two students the report names first."""
    if source in (sim.SOLUTION, sim.LIBRARY):  # no student of that name in these tests
        return (student, cell), (source, source_cell)
    return tuple(sorted([(student, cell), (source, source_cell)]))


def test_a_class_of_honest_students_and_copiers(classes: dict) -> None:
    """find_matches over a whole class (the correct variants and the hand-made copies as
    students): every copier is reported against what it copied, and every reported pair has a
    copier in it; two honest students, or an honest one and a reference, never are. (Two
    copiers of one original, or a rearranged copy of the solution and the library the solution
    agrees with, may be reported together too.)"""
    for aid, c in classes.items():
        students = [d for owner, cells in c["honest"].items() if owner != sim.SOLUTION
                    for d in cells.values()]
        expected, copiers = set(), set()
        for name, student, original in c["copies"]:
            if name.startswith("rearranged ") or name in COPIES:
                if name in COPIES:  # a rearranged variant is in the class already
                    students.append(student)
                expected.add(_pair(student.owner, student.cell, original.owner, original.cell))
                copiers.add((student.owner, student.cell))
        references = list(c["honest"][sim.SOLUTION].values()) + c["library"]
        found = set()
        for m in sim.find_matches(students, references):
            files = m.source_cell.split(" + ")  # several library files: the one copied
            copied = [f for f in files if (_pair(m.student_id, m.cell, m.source, f)) in expected]
            found.add(_pair(m.student_id, m.cell, m.source, (copied or [m.source_cell])[0]))
        assert expected <= found, (aid, expected - found)
        innocent = {pair for pair in found if not copiers & set(pair)}
        assert not innocent, (aid, innocent)
        print(f"{aid}: {len(expected)} copiers found; also reported: "
              f"{sorted(found - expected) or 'none'}")


# ---------------------------------------------------------------- end to end


SQUARE = '''import sys
import warnings


def square(x):
    """Return x squared."""
    magnitude = abs(x)
    total = 0
    count = 0
    while count < magnitude:
        total = total + magnitude
        count = count + 1
    if total < 0:
        raise ArithmeticError("a square is never negative")
    return total
'''
SQUARE_COPY = '''import sys
import warnings


def square(x):
    # my loop
    m = abs(x)
    count = 0; total = 0
    while count < m:
        total = total + m; count = count + 1
    if total < 0: raise ArithmeticError("negative")
    return total
'''
SQUARE_OWN = '''import sys
import warnings


def square(x):
    """Return x squared."""
    return x ** 2
'''
TOY_LIBRARY = '''
def double(value: float) -> float:
    """2 * value, by repeated addition of halves."""
    half = value / 2
    parts = [half, half, half, half]
    result = 0.0
    for part in parts:
        result += part
    if result != result:
        raise ValueError("not a number")
    return result
'''
DOUBLE_COPY = '''def double(x):
    h = x / 2
    pieces = [h, h, h, h]  # four quarters
    total = 0.0
    for p in pieces:
        total += p
    if total != total:
        raise ValueError("NaN")
    return total
'''


@pytest.mark.slow
def test_autograde_and_similarity_command(tmp_path: Path) -> None:
    root = tmp_path / "course"
    copy_toy(root)
    (root / "src" / "resnet_course").mkdir(parents=True)
    (root / "src" / "resnet_course" / "toylib.py").write_text(TOY_LIBRARY)
    assert run_grader("release", "--root", str(root)).returncode == 0
    release = nbformat.read(root / "exercises" / "toy" / "toy.ipynb", as_version=4)

    def submission(square: str, double: str = "def double(x):\n    return 2 * x\n"):
        nb = copy.deepcopy(release)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in ("square", "double"):
                cell.source = square if gid == "square" else double
        return nb

    write_submissions(tmp_path / "submissions", "toy", {
        "amy": submission(SQUARE), "ben": submission(SQUARE_COPY),
        "cleo": submission(SQUARE_OWN, DOUBLE_COPY), "dan": submission(SQUARE_OWN)})
    work = tmp_path / "work"
    extra = no_sandbox_args()
    proc = run_grader("autograde", str(tmp_path / "submissions"), "--workdir", str(work),
                      "--root", str(root), "--cell-timeout", "30", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    grades = {r["student_id"]: r for r in read_csv(work / "grades.csv")}
    assert {s: (g["score"], g["flags"]) for s, g in grades.items()} == {
        "amy": ("3", sim.STUDENT_FLAG), "ben": ("3", sim.STUDENT_FLAG),
        "cleo": ("3", sim.REFERENCE_FLAG), "dan": ("3", "")}  # flags only, full marks kept
    assert {r["student_id"]: r["flags"] for r in read_csv(work / "review.csv")} == {
        "amy": sim.STUDENT_FLAG, "ben": sim.STUDENT_FLAG, "cleo": sim.REFERENCE_FLAG}
    report = (work / "similarity.csv").read_text()
    rows = read_csv(work / "similarity.csv")
    assert sorted((r["student_id"], r["cell"], r["kind"], r["source"], r["source_cell"])
                  for r in rows) == [
        ("amy", "square", sim.STUDENT, "ben", "square"),
        ("cleo", "double", sim.LIBRARY, sim.LIBRARY, "resnet_course/toylib.py")]
    assert report.splitlines()[0] == ",".join(sim.CSV_HEADER)
    assert all(float(r["score"]) >= sim.THRESHOLD and r["lines"] for r in rows)

    (work / "similarity.csv").unlink()
    again = run_grader("similarity", "--workdir", str(work), "--root", str(root))
    assert again.returncode == 0, again.stderr
    assert "2 pair(s)" in again.stdout
    assert (work / "similarity.csv").read_text() == report
