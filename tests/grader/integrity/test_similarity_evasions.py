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
import functools

import nbformat
import pytest
import test_similarity as base
from similarity_evasions import EVASIONS, everything
from submissions import make_submission, solution_path

import grader.integrity.similarity as sim

STEPS = [*EVASIONS, everything]
# one worker for this module and tests/grader/integrity/test_similarity_copydetect.py, which scores
# the same
# evaded copies: evaded_document computes each once
pytestmark = pytest.mark.xdist_group("similarity-evasions")


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


@functools.cache
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


def same_tokens(a: str, b: str) -> bool:
    return [t.text for t in sim.tokenise(a)] == [t.text for t in sim.tokenise(b)]


PLAIN = '''
def f(model, X, n):
    total = 0
    for i in range(n):
        total += model(X[i])
    if total > 0:
        return total
    return -total
'''


@pytest.mark.parametrize("disguised", [
    # dead code: after return, `if False:`, `while 0:`, loops over nothing, bare constants,
    # a local assigned and never read, x = x, assert True
    PLAIN.replace("    return -total", "    return -total\n    total = 5\n    print(total)"),
    PLAIN.replace("    total = 0\n", "    total = 0\n    if False:\n        total = 1\n"
                  "    while 0:\n        total += 1\n    for _ in []:\n        print(1)\n"
                  "    for _ in range(0):\n        print(2)\n    42\n    'note'\n    ...\n"
                  "    unused = n * 2\n    total = total\n    assert True\n"),
    # redundant wrappers, constant conditions, double parentheses, not not
    PLAIN.replace("model(X[i])", "((model))(([X][0][(i, n)[0]]))")
         .replace("if total > 0:", "if not not (total > 0 if 1 == 1 else n):"),
    PLAIN.replace("model(X[i])", "getattr(model, '__call__')(*[X[i + 0]], **{})")
         .replace("    total = 0\n", "    total = (lambda: 0)()\n"),
    PLAIN.replace("    if total > 0:\n        return total\n    return -total",
                  "    if True:\n        if total > 0:\n            return total\n"
                  "        else:\n            return -total\n"),
    PLAIN.replace("    if total > 0:\n        return total\n",
                  "    if total <= 0:\n        pass\n    else:\n        return total\n"),
])
def test_code_that_does_nothing_or_wraps_is_normalised_away(disguised) -> None:
    ast.parse(disguised)
    assert not same_tokens(PLAIN, PLAIN.replace("total += model", "total -= model"))
    if "total <= 0" in disguised:  # `if not c: pass / else: S` is `if c: S` only up to `not`
        assert sim.score(PLAIN, disguised) >= sim.THRESHOLD
    else:
        assert same_tokens(PLAIN, disguised), ast.unparse(ast.parse(disguised))


def test_only_independent_statements_are_reordered() -> None:
    independent = "def f(a):\n    x = g(a)\n    y = h(a)\n    return x + y\n"
    swapped = "def f(a):\n    y = h(a)\n    x = g(a)\n    return x + y\n"
    assert same_tokens(independent, swapped)
    dependent = "def f(a):\n    x = g(a)\n    y = h(x)\n    return y\n"
    reversed_ = "def f(a):\n    y = h(x)\n    x = g(a)\n    return y\n"
    assert not same_tokens(dependent, reversed_)
    # a method call changes its receiver: appends keep their order
    appends = ("def f(a):\n    out = []\n    out.append(g(a))\n    out.append(h(a))\n"
               "    return out\n")
    assert not same_tokens(appends, appends.replace("g(a)", "TMP").replace("h(a)", "g(a)")
                           .replace("TMP", "h(a)"))
    # definitions side by side come in one order, whatever the cell's
    assert same_tokens("def g():\n    return 1\n\ndef h(x):\n    return x\n",
                       "def h(x):\n    return x\n\ndef g():\n    return 1\n")


def test_token_lines_follow_their_statement_after_reordering() -> None:
    tokens = sim.tokenise("def f(a):\n    y = h(a)\n\n    x = g(a)\n    return x + y\n")
    assert {t.line for t in tokens if t.text == "g"} == {4}
    assert {t.line for t in tokens if t.text == "h"} == {2}


@pytest.mark.parametrize("evade", STEPS[:4], ids=lambda f: f.__name__)
def test_the_whole_ex1_solution_evaded_is_flagged(evade) -> None:
    """The case found on main: ex1's solution handed in with a `pass` after every statement (or
    its arguments wrapped) was graded with no flag. Every answer cell long enough to judge is
    now reported against the solution, and the submission gets `similar-to-reference`."""
    aid = "ex1_degradation"
    solution = nbformat.read(solution_path(aid), as_version=4)
    answers = sim.answer_cells(solution)
    nb = make_submission(aid, {cell: evade(sim._clean(src)) for cell, src in answers.items()})
    students = sim.notebook_documents("mallory", aid, nb, base.given(aid))
    references = list(base.cells_of(sim.SOLUTION, aid, solution, kind=sim.SOLUTION).values())
    judged = {d.cell for d in references if len(d.hashes) >= sim.MIN_SHARED}
    matches = sim.find_matches(students, references + base.library(aid))
    assert judged and judged <= {m.cell for m in matches if m.kind == sim.SOLUTION}
    assert sim.flags_by_submission(matches) == {("mallory", aid): {sim.REFERENCE_FLAG}}
