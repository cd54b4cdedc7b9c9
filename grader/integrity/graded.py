"""Which definitions students write, and how to recognise their implementation on a page.

The graded definitions are (1) every top-level `def`/`class` of an nbgrader answer cell
(`solution: true` code cell) of solutions/<id>/<id>.ipynb, and (2) the course library's objects
that implement the same contracts, listed once below. The course edition of the book shows none
of them; the self-study edition shows the library's only in collapsed spoilers
(tests/book/test_editions.py checks the built HTML of both).

A definition is recognised by its normalised token stream (Python `tokenize`, without comments,
docstrings, layout, type hints' names or local names), so a renamed or reformatted copy of it on
a page is found as well as a verbatim one.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import io
import math
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.bridge import cell_roles
from grader.integrity.similarity import normalise_token

# Library objects that implement a contract a student writes in an assignment (same behaviour as
# an answer cell, or the reference of a graded task), by module of src/resnet_course/.
# Helpers whose body *is* the answer (the shortcut choice, a stage, the ResNet skeleton) count too.
LIBRARY_GRADED: dict[str, tuple[str, ...]] = {
    "models": (
        "plain_mlp", "ResidualBlock", "residual_mlp", "zero_init_residual_",   # ex1, ex2
        "ZeroPadShortcut", "ProjectionShortcut", "make_shortcut", "BasicBlock",  # ex3
        "Bottleneck", "make_stage", "ResNet", "resnet_cifar", "_resnet_imagenet",  # ex3, ex4
        "resnet18", "resnet34", "resnet50", "count_parameters",                 # ex4
    ),
    # ex1 (same specs); PlainBlock is ex2's ResidualBlock but for the `+ a`, so it is hidden too
    "mlp_experiments": ("classification_error", "gradient_norms_by_layer", "PlainBlock",
                        "bn_plain_mlp"),                                  # ex1 plain_bn_mlp
    "train": ("train_one_epoch", "evaluate"),                            # ex5
    "device": ("pick_device",),                                          # ex5
    # BasicBlock's forward with one input detached (path gradients): its body is ex3's answer
    "probes": ("_block_on_path",),
}
# Names the library may gain for planned tasks (pre-activation blocks, a multiply-add counter):
# any top-level definition of the modules above that matches is graded as well.
LIBRARY_GRADED_PATTERNS = ("PreAct*", "preact_*", "*_preact*", "count_macs*")

# A page "shows" a definition when a code block shares a run of MIN_RUN normalised tokens with it,
# or SHORT_SHARE of a definition shorter than that (a copy may add a pair of parentheses).
# Calibrated in tests/grader/integrity/test_graded.py: every graded definition is found in a
# renamed, reformatted
# copy of itself, and in none of the library's ungraded code (training loops, experiments,
# plotting: longest shared run 23 tokens, a training step) nor in the exercises' stubs.
MIN_RUN = 30
SHORT_SHARE = 0.8


@dataclass(frozen=True)
class Definition:
    name: str
    origin: str  # "solutions/ex3_shortcuts" or "resnet_course.models"
    source: str

    @functools.cached_property
    def tokens(self) -> tuple[str, ...]:
        return normalised_tokens(self.source)


def answer_definitions(solutions: Path) -> list[Definition]:
    """Top-level def/class of every answer cell of solutions/<id>/<id>.ipynb."""
    found = []
    for path in sorted(solutions.glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and cell_roles.is_solution(cell):
                origin = f"solutions/{path.parent.name}"
                found += _top_level(cell.source, origin)
    return found


def library_definitions(src: Path) -> list[Definition]:
    """The library objects of LIBRARY_GRADED (and LIBRARY_GRADED_PATTERNS); a listed name that
    the library does not define is an error, so the list cannot silently go stale."""
    found = []
    # patterns apply to every module of the library (a new module may add a graded block)
    for module in sorted({*LIBRARY_GRADED} | {p.stem for p in src.glob("*.py")} - {"__init__"}):
        path = src / f"{module}.py"
        defs = {d.name: d for d in _top_level(path.read_text(encoding="utf-8"),
                                              f"resnet_course.{module}")}
        wanted = set(LIBRARY_GRADED.get(module, ()))
        missing = wanted - defs.keys()
        if missing:
            raise LookupError(f"grader/integrity/graded.py lists {sorted(missing)} in {path}, "
                              "which does not define them")
        wanted |= {n for n in defs for p in LIBRARY_GRADED_PATTERNS if fnmatch.fnmatch(n, p)}
        found += [defs[n] for n in sorted(wanted)]
    return found


def graded_definitions(root: Path) -> list[Definition]:
    """Answer-cell definitions and their library counterparts, for the repository at `root`."""
    return (answer_definitions(root / "solutions")
            + library_definitions(root / "src" / "resnet_course"))


def _top_level(source: str, origin: str) -> list[Definition]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # IPython magics etc.: an answer cell that does not parse defines nothing
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [Definition(node.name, origin, ast.get_source_segment(source, node, padded=False))
            for node in tree.body if isinstance(node, kinds)]


def normalised_tokens(code: str) -> tuple[str, ...]:
    """Tokens of `code` without comments, docstrings, layout and `def`/`class` headers (the
    signatures are the public contract, shown on purpose), and with every name that is not an
    attribute (after a dot), a keyword argument, a keyword or a builtin replaced by `V`, numbers
    by NUM and strings by STR (grader.integrity.similarity.normalise_token): local names, parameters
    and constants do not matter, the operations and APIs used do."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(_dedent(code)).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = _lenient_tokens(code)
    out: list[str] = []
    prev = None  # the last token that is not layout
    header_depth = None  # bracket depth while inside a def/class header, else None
    depth = 0  # bracket depth elsewhere: a `name=` inside brackets is a keyword argument (API)
    for i, (tok, statement_start) in enumerate(_with_statement_start(tokens)):
        if tok.type in _LAYOUT:
            continue
        if header_depth is None and statement_start and tok.string in ("def", "class"):
            header_depth = 0
        if header_depth is not None:
            if tok.string in "([{" and tok.type == tokenize.OP:
                header_depth += 1
            elif tok.string in ")]}" and tok.type == tokenize.OP:
                header_depth -= 1
            elif tok.string == ":" and header_depth == 0:
                header_depth = None
            continue
        if tok.type == tokenize.STRING and statement_start and _ends_statement(tokens, i):
            continue  # a docstring (a string that is a whole statement)
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        keyword_arg = depth > 0 and _next_is(tokens, i, "=")
        # names, numbers and strings as grader.integrity.similarity normalises them (no bound names:
        # every name but an attribute or a builtin is V)
        after = _next(tokens, i) if tok.string == "," or tok.type == tokenize.STRING else None
        text = tok.string if keyword_arg else normalise_token(tok, prev, after, None)
        if text is not None:
            out.append(text)
        prev = tok
    return tuple(out)


_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENCODING, tokenize.ENDMARKER}


def _next(tokens: list[tokenize.TokenInfo], i: int) -> tokenize.TokenInfo | None:
    """The next token after i that is not layout (a trailing comma is judged by it)."""
    for j in range(i + 1, len(tokens)):
        if tokens[j].type not in _LAYOUT:
            return tokens[j]
    return None


def _with_statement_start(tokens):
    """Yield (token, starts_a_statement); decorators and keywords like `async` aside, the first
    token after a NEWLINE/INDENT/DEDENT starts one."""
    start = True
    for tok in tokens:
        if tok.type in (tokenize.NL, tokenize.COMMENT):
            yield tok, False
            continue
        yield tok, start
        start = tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) or (
            start and tok.string == "async")


def _next_is(tokens: list[tokenize.TokenInfo], i: int, text: str) -> bool:
    return i + 1 < len(tokens) and tokens[i + 1].string == text


def _ends_statement(tokens: list[tokenize.TokenInfo], i: int) -> bool:
    after = tokens[i + 1:]
    nxt = next((t for t in after if t.type not in (tokenize.COMMENT, tokenize.NL)), None)
    return nxt is None or nxt.type in (tokenize.NEWLINE, tokenize.ENDMARKER)


def _dedent(code: str) -> str:
    return textwrap.dedent(code.expandtabs())


def _lenient_tokens(code: str) -> list[tokenize.TokenInfo]:
    """Tokenise line by line when the whole block does not tokenise (console sessions, output
    mixed into a block, a fragment of a class): the runs inside each line still count."""
    tokens: list[tokenize.TokenInfo] = []
    for line in code.splitlines():
        try:
            tokens += [t for t in tokenize.generate_tokens(io.StringIO(line.strip() + "\n")
                                                           .readline)
                       if t.type != tokenize.ENDMARKER]
        except (tokenize.TokenError, IndentationError, SyntaxError):
            continue
    return tokens


def longest_common_run(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the longest contiguous run of tokens that `a` and `b` share (dynamic
    programming over one row; the streams are a few hundred tokens)."""
    if not a or not b:
        return 0
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best = current[j]
        previous = current
    return best


def shows(definition_tokens: tuple[str, ...], code_tokens: tuple[str, ...],
          min_run: int = MIN_RUN) -> bool:
    """Whether a code block with `code_tokens` shows the definition's implementation: they share
    a run of `needed` tokens (checked with a set of the definition's runs of that length)."""
    needed = min(min_run, math.ceil(SHORT_SHARE * len(definition_tokens)))
    if needed <= 0 or len(code_tokens) < needed:
        return False
    runs = _runs(definition_tokens, needed)
    return any(code_tokens[i:i + needed] in runs for i in range(len(code_tokens) - needed + 1))


@functools.lru_cache(maxsize=512)
def _runs(tokens: tuple[str, ...], length: int) -> frozenset[tuple[str, ...]]:
    return frozenset(tokens[i:i + length] for i in range(len(tokens) - length + 1))
