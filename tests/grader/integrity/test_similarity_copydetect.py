"""grader.integrity.similarity against copydetect (PyPI, pinned in requirements.txt) on the same
pairs.

copydetect is a maintained winnowing detector (Stanford MOSS's method): pygments tokens, names
as V/F/O, strings as S, fingerprints of 25 filtered characters, the given code as boilerplate.
Both score each pair as the share of the smaller side found in the other (copydetect: the larger
of its two per-file similarities; against the library, the cell's share found in all the
library's files together). The pairs are the calibration's
(tests/grader/integrity/test_similarity.py): the
independently written correct answers against each other and the library, and every copy —
hand-made, rearranged, disguised, and each evasion of tests/similarity_evasions.py of every
answer long enough to judge. A method separates the two when its lowest copy score is above
its highest independent one; the wider that gap, the safer a threshold between them.
grader.integrity.similarity is used because its gap is the wider one (run with -s for the figures,
which the README quotes). Marked slow: it fingerprints every pair twice (about a minute).
"""

from __future__ import annotations

import functools
import io
import itertools

import nbformat
import pytest
import test_similarity as base
from copydetect import CodeFingerprint, compare_files
from similarity_evasions import EVASIONS, everything
from submissions import release_path
from test_similarity import classes  # noqa: F401 (a fixture)
from test_similarity_evasions import evaded_document, originals  # noqa: F401 (a fixture)

import grader.integrity.similarity as sim

pytestmark = pytest.mark.xdist_group("similarity-evasions")  # its evaded copies are cached
NOISE = 25  # copydetect's defaults: k-grams of 25 filtered characters, every one kept
GUARANTEE = 25


@functools.cache
def fingerprint(code: str, boilerplate: tuple[int, ...] = ()) -> CodeFingerprint:
    """copydetect's fingerprint of a source, made once: a source is in many pairs (an answer
    against every other and the library), and compare_files only reads it."""
    return CodeFingerprint("cell.py", NOISE, GUARANTEE - NOISE + 1, list(boilerplate),
                           language="python", fp=io.StringIO(sim._clean(code)))


def copydetect_score(a: str, b: str, boilerplate: tuple[int, ...],
                     one_sided: bool = False) -> float:
    """copydetect's similarity of two sources; one_sided: the share of `a` found in `b`."""
    _, (share_a, share_b), _ = compare_files(fingerprint(a, boilerplate),
                                             fingerprint(b, boilerplate))
    return float(share_a if one_sided else max(share_a, share_b))


def our_score(a: sim.Document, b: sim.Document | list[sim.Document]) -> float:
    if isinstance(b, list):  # the library
        match = sim.compare_library(a, b, 0.0)
        return match.score if match else 0.0
    return base._score(a, b)[0]


def pairs(classes: dict, originals: list) -> dict[str, list[tuple]]:  # noqa: F811
    """'independent', 'copy' (the calibration's copies) and 'evasion' pairs: (assignment,
    student document, original document or the library's documents)."""
    found: dict[str, list[tuple]] = {"independent": [], "copy": [], "evasion": []}
    for aid, c in classes.items():
        honest = {owner: cells for owner, cells in c["honest"].items()
                  if (aid, owner) not in base.REARRANGED}
        for a, b in itertools.combinations(honest.values(), 2):
            found["independent"] += [(aid, a[cell], b[cell]) for cell in set(a) & set(b)]
        found["independent"] += [(aid, d, c["library"]) for owner, cells in honest.items()
                                 if owner != sim.SOLUTION for d in cells.values()]
        for _, student, original in c["copies"]:
            if len(original.hashes) >= sim.MIN_SHARED:
                target = c["library"] if original.kind == sim.LIBRARY else original
                found["copy"].append((aid, student, target))
    for aid, owner, source, original in originals:
        for evade in [*EVASIONS, everything, lambda s: base.disguise(everything(s))]:
            copy = evaded_document(aid, owner, original.cell, evade(sim._clean(source)))
            found["evasion"].append((aid, copy, original))
    return found


@pytest.mark.slow
def test_grader_similarity_separates_copies_better_than_copydetect(classes, originals) -> None:  # noqa: F811,E501
    boilerplate = {aid: tuple(sorted(fingerprint("\n".join(sim.code_cells(
        nbformat.read(release_path(aid), as_version=4)))).hashes)) for aid in classes}
    scores: dict[str, dict[str, list[float]]] = {"ours": {}, "copydetect": {}}
    for kind, items in pairs(classes, originals).items():
        ours, theirs = [], []
        for aid, student, target in items:
            ours.append(our_score(student, target))
            if isinstance(target, list):
                library = "\n".join(d.source for d in target)
                theirs.append(copydetect_score(student.source, library, boilerplate[aid], True))
            else:
                theirs.append(copydetect_score(student.source, target.source, boilerplate[aid]))
        scores["ours"][kind], scores["copydetect"][kind] = ours, theirs
    gaps = {}
    for method, by_kind in scores.items():
        highest = max(by_kind["independent"])
        copies = by_kind["copy"] + by_kind["evasion"]
        gaps[method] = min(copies) - highest
        print(f"\n{method}: {len(by_kind['independent'])} independent pairs, highest "
              f"{highest:.3f}; lowest copy {min(by_kind['copy']):.3f} "
              f"({len(by_kind['copy'])} calibration copies), {min(by_kind['evasion']):.3f} "
              f"({len(by_kind['evasion'])} evasions); gap {gaps[method]:+.3f}; copies at or "
              f"below the highest independent score: {sum(s <= highest for s in copies)}")
    assert max(scores["ours"]["independent"]) < sim.THRESHOLD <= min(
        scores["ours"]["copy"] + scores["ours"]["evasion"])
    assert gaps["ours"] > gaps["copydetect"]
