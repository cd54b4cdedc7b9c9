"""The similarity report sees through edits that change how a copy looks, not what it does
(tests/similarity_evasions.py): `pass` after every statement, wrapped arguments, reordered
statements, a loop's first pass written out, a helper extracted, comments and blank lines.

Every answer cell of the solution and of the independently written correct variants
(tests/variants_ex*.py) long enough to be judged (MIN_SHARED fingerprints) is evaded each way,
and the evaded copy must be reported against its original. Run with -s for the lowest score of
each evasion. Scores never change: the report only flags.
"""

from __future__ import annotations

import ast

import pytest
import test_similarity as base
from similarity_evasions import EVASIONS, everything
from submissions import make_submission

import grader.similarity as sim

STEPS = [*EVASIONS, everything]


@pytest.fixture(scope="module")
def originals() -> list[tuple[str, str, str, sim.Document]]:
    """(assignment, owner, source, document) of every honest answer cell long enough to judge."""
    found = []
    for aid, module in base.variant_modules().items():
        for owner, cells in base.honest_answers(aid, module).items():
            for cell, doc in cells.items():
                if len(doc.hashes) >= sim.MIN_SHARED:
                    found.append((aid, owner, base.source_of(aid, owner, cell, module), doc))
    return found


def evaded_document(aid: str, owner: str, cell: str, source: str) -> sim.Document:
    nb = make_submission(aid, {cell: source})
    return base.cells_of(f"evaded-{owner}", aid, nb, {cell})[cell]


@pytest.mark.parametrize("evade", STEPS, ids=lambda f: f.__name__)
def test_an_evaded_copy_is_still_reported(evade, originals) -> None:
    lowest, changed = (1.0, ""), 0
    for aid, owner, source, original in originals:
        evaded = evade(sim._clean(source))
        ast.parse(evaded)  # still Python
        changed += evaded.strip() != sim._clean(source).strip()
        copy = evaded_document(aid, owner, original.cell, evaded)
        match = sim.compare(copy, original)
        assert match is not None, (evade.__name__, aid, owner, original.cell,
                                   base._score(copy, original))
        lowest = min(lowest, (match.score, f"{aid} {owner}/{original.cell}"))
    assert changed, f"{evade.__name__} changed no cell: it tests nothing"
    print(f"\n{evade.__name__}: {len(originals)} cells ({changed} changed), lowest score "
          f"{lowest[0]:.3f} ({lowest[1]})")


def test_renamed_and_evaded_every_way_is_still_reported(originals) -> None:
    lowest = (1.0, "")
    for aid, owner, source, original in originals:
        evaded = base.disguise(everything(sim._clean(source)))
        copy = evaded_document(aid, owner, original.cell, evaded)
        match = sim.compare(copy, original)
        assert match is not None, (aid, owner, original.cell, base._score(copy, original))
        lowest = min(lowest, (match.score, f"{aid} {owner}/{original.cell}"))
    print(f"\nrenamed and every evasion: lowest score {lowest[0]:.3f} ({lowest[1]})")


def test_the_evasions_found_on_main_are_normalised_away() -> None:
    """The two reported evasions leave no trace in the token stream at all."""
    source = base.LONG
    for evade in (EVASIONS[0], EVASIONS[1], EVASIONS[2], EVASIONS[3]):
        assert [t.text for t in sim.tokenise(evade(source))] == \
            [t.text for t in sim.tokenise(source)], evade.__name__
