"""`python -m grader similarity`: answer cells that are suspiciously alike (MOSS/JPlag style).

Every answer cell (nbgrader `solution: true`) of every submission is compared with the same cell
of every other student, and with the known sources: the solution's answer cell and the course
library (src/resnet_course). Like MOSS (Schleimer, Wilkerson and Aiken, "Winnowing", SIGMOD 2003)
and JPlag, a cell becomes a stream of normalised tokens. A cell that parses is first normalised
on its syntax tree (grader.integrity.similarity_syntax): what changes how the code looks but not
what it does is taken out (`pass`, docstrings, dead code, wrappers like `(x,)[0]`, a loop's first
pass written out, a one-line helper called once), each statement is written back by `ast.unparse`,
and the statements of each block are put in a canonical order (independent statements may come
in any order). Then:

* comments, docstrings, blank lines and line breaks inside brackets are dropped;
* every name the cell *binds* (its classes, functions, parameters, variables, `self.x`
  attributes, import aliases) becomes `V`, numbers become `NUM` and strings `STR`, so renaming
  and changed constants or messages do not hide a copy; names it only *uses* (`nn.Conv2d`,
  `F.relu`, `range`) stay, since they are what the code does;
* `;` counts as a line break, `if x: y` as the same on two lines; a trailing comma before a
  closing bracket, parentheses that only group and type annotations are dropped.

Names bound in another cell of the same notebook (or another file of the library) count as bound
too, so a class defined in one cell and used in the next is `V` in both the copy and the original.

Each k-gram of that stream is hashed and a winnowed subset kept as the cell's fingerprints,
each remembering the source lines it covers. Fingerprints that also occur in the given code (the
released notebook: stubs, docstrings, imports) are removed, as MOSS's base file does. The score of
a pair is the share of the smaller cell's fingerprints that the other one has too (against the
library: those of the files the cell shares most with, see compare_library), and a pair is
reported only when it shares at least MIN_SHARED fingerprints, so that a few lines that any
correct answer must contain (a `pick_device` has little room to differ) are not evidence; for
the same reason a fingerprint that more than COMMON_LIMIT students share is ignored when students
are compared with each other (MOSS's -m).

Nothing here runs student code or changes a score: it reads notebooks as JSON and writes
DIR/similarity.csv, and autograde adds the flags `similar-to-reference` (library or solution) and
`similar-to-student` for the instructor to review.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import csv
import hashlib
import io
import json
import keyword
import token as token_types
import tokenize
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import combinations
from pathlib import Path

from grader.bridge import cell_roles
from grader.bridge.course import CourseLayout
from grader.integrity import similarity_syntax as syntax
from grader.integrity.similarity_html import write_reports
from grader.records.flags import SIMILAR_TO_REFERENCE, SIMILAR_TO_STUDENT

# Calibrated on tests/variants_ex*.py (`pytest tests/grader/integrity/test_similarity*.py -s` prints
# the figures):
# independent correct answers (solution, variants, library) score at most 0.750; renamed,
# reordered and reformatted copies (of the library as it is now, the solution, other students,
# and the variants that rearrange another answer) and the evasions of
# tests/similarity_evasions.py (pass insertion, wrapped arguments, reordering, unrolled loops,
# extracted helpers, comments) at least 0.806; THRESHOLD sits between.
K = 6  # tokens per k-gram: about half a statement
WINDOW = 3  # winnowing window: every match of K + WINDOW - 1 = 8 tokens or more is seen
THRESHOLD = 0.78  # share of the smaller cell's fingerprints found in the other one
# Fewer shared fingerprints than this (about four short lines) is too little code to mean
# anything: pick_device, zero_init_residual_, count_parameters or layer_gradient_norms have
# little room to differ, so two honest students may write them alike. Such cells are never
# reported. (The syntax-tree normalisation yields a few more fingerprints per line than the
# token stream alone: a three-line body reached 14, hence 15, not the token method's 12.)
MIN_SHARED = 15
# MOSS's -m: a fingerprint found in the same cell of more than this many students is the
# natural way to write that passage, not evidence that two of them copied from each other; it
# is ignored when students are compared with each other (not with the solution or library).
COMMON_LIMIT = 10
MAX_NOTEBOOK_BYTES = 20 * 2**20  # larger hand-ins are not compared
MAX_CELL_CHARS = 200_000  # only the start of a longer cell is compared

REFERENCE_FLAG = SIMILAR_TO_REFERENCE  # flag names: grader.records.flags
STUDENT_FLAG = SIMILAR_TO_STUDENT
STUDENT = "student"
SOLUTION = "solution"
LIBRARY = "library"
CSV_HEADER = ["student_id", "assignment", "cell", "kind", "source", "source_cell", "score",
              "shared", "lines", "source_lines", "report"]
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS",
           "### END HIDDEN TESTS")
SKIPPED = {token_types.COMMENT, token_types.NL, token_types.INDENT, token_types.DEDENT,
           token_types.ENCODING, token_types.ENDMARKER}
BUILTIN_NAMES = frozenset(dir(builtins))
NEWLINE = ";"


@dataclass(frozen=True)
class Token:
    text: str  # normalised: keyword, operator, a name used, or V / NUM / STR
    line: int  # 1-based line of the cell where it starts (of its statement: see tokenise)
    end_line: int = 0  # the last line of its statement, where known

    @property
    def last_line(self) -> int:
        return max(self.line, self.end_line)


@dataclass(frozen=True)
class Fingerprint:
    hash: int
    first_line: int
    last_line: int


@dataclass
class Document:
    """One piece of code to compare: a student's answer cell, a solution cell, a library file."""

    owner: str  # student id, SOLUTION or LIBRARY
    assignment: str
    cell: str  # grade_id, or the library file's path
    fingerprints: list[Fingerprint] = field(default_factory=list)
    kind: str = STUDENT  # STUDENT, SOLUTION or LIBRARY (a student may be called "library")
    source: str = ""  # the code, for the side-by-side pages

    @cached_property
    def hashes(self) -> set[int]:
        return {f.hash for f in self.fingerprints}

    def lines(self, hashes: set[int]) -> list[int]:
        """Source lines covered by the fingerprints in `hashes`."""
        return sorted({line for f in self.fingerprints if f.hash in hashes
                       for line in range(f.first_line, f.last_line + 1)})


@dataclass(frozen=True)
class Match:
    student_id: str
    assignment: str
    cell: str
    kind: str  # of the source: STUDENT, SOLUTION or LIBRARY
    source: str  # another student's id, SOLUTION or LIBRARY
    source_cell: str
    score: float
    shared: int
    lines: str  # "3-7,10": lines of the student's cell
    source_lines: str

    @property
    def flag(self) -> str:
        return STUDENT_FLAG if self.kind == STUDENT else REFERENCE_FLAG


# ---------------------------------------------------------------- tokens


def _clean(source: str) -> str:
    """nbgrader markers and IPython magics/shell lines become blank lines (line numbers kept)."""
    lines = []
    for line in source.splitlines():
        stripped = line.strip()
        magic = stripped.startswith(("%", "!"))
        lines.append("" if magic or stripped in MARKERS else line)
    return "\n".join(lines) + "\n"


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # nested too deep
        return None


def bound_names(source: str | ast.Module) -> set[str] | None:
    """Names the code binds (defs, classes, parameters, assigned names and attributes, import
    aliases, loop/with/except targets); None when it does not parse."""
    tree = _parse(source) if isinstance(source, str) else source
    if tree is None:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)  # self.linear1 = ...
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names


def annotation_spans(tree: ast.Module | None) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of type annotations: `width: int` is `width` to a reader."""
    spans = []
    for node in ast.walk(tree) if tree is not None else []:
        if isinstance(node, ast.arg) or isinstance(node, ast.AnnAssign):
            note = node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            note = node.returns
        else:
            continue
        if note is not None:
            spans.append(((note.lineno, note.col_offset),
                          (note.end_lineno, note.end_col_offset)))
    return spans


def _annotation_tokens(raw: list[tokenize.TokenInfo], tree: ast.Module | None) -> set[int]:
    """Positions of the tokens of every annotation and of the `:` or `->` before it."""
    starts = [tok.start for tok in raw]  # in source order
    found = set()
    for start, end in annotation_spans(tree):
        first = i = bisect.bisect_left(starts, start)
        while i < len(raw) and raw[i].end <= end:
            found.add(i)
            i += 1
        if i > first and first > 0 and raw[first - 1].string in (":", "->"):
            found.add(first - 1)
    return found


def _raw_tokens(source: str) -> list[tokenize.TokenInfo]:
    """Python's tokens, up to the first error (a student's cell may not even tokenise)."""
    found = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            found.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def _merge_fstrings(raw: list[tokenize.TokenInfo]) -> Iterator[tokenize.TokenInfo]:
    """Python >= 3.12 splits f-strings into pieces; one STRING token each, as in 3.11."""
    start = getattr(token_types, "FSTRING_START", None)
    end = getattr(token_types, "FSTRING_END", None)
    depth, first = 0, None
    for tok in raw:
        if start is not None and tok.type == start:
            depth, first = depth + 1, first or tok
        elif end is not None and tok.type == end:
            depth -= 1
            if depth == 0:
                yield tokenize.TokenInfo(token_types.STRING, "f''", first.start, tok.end, "")
                first = None
        elif depth == 0:
            yield tok


def tokenise(source: str, context: frozenset[str] = frozenset()) -> list[Token]:
    """The normalised token stream of a piece of Python (see the module docstring). `context`:
    names bound elsewhere in the same notebook or library (a class defined in another cell)."""
    source = _clean(source)
    tree = _parse(source)
    if tree is None:  # not Python (yet): tokens as written, every name but builtins V
        return token_stream(_raw_tokens(source), 1, None, tree)
    bound = bound_names(tree) | context

    def emit(raw: list[tokenize.TokenInfo], first: int, last: int) -> list[Token]:
        return token_stream(raw, first, bound, None, last)

    try:
        tokens = syntax.block_tokens(syntax.normalise_tree(tree).body, emit,
                                     syntax.variables_of(tree))
    except RecursionError:  # nested too deep to write back: the tokens as written
        return token_stream(_raw_tokens(source), 1, bound, tree)
    return _separated(tokens)


def token_stream(raw: list[tokenize.TokenInfo], first: int, bound: set[str] | None,
                 tree: ast.Module | None, last: int | None = None) -> list[Token]:
    """Normalised tokens of Python's tokens. With `last`, every token is given the lines
    first..last (a statement written back by grader.integrity.similarity_syntax); without, its own
    line (counted from `first`). `tree`: the syntax tree, for its type annotations, when known."""
    raw = [t for t in _merge_fstrings(raw)
           if t.type not in SKIPPED
           and not (t.type == token_types.ERRORTOKEN and not t.string.strip())]
    # `x = (a, b)` is `x = a, b` and `return (x)` is `return x`; annotations are left out
    dropped = _grouping_parentheses(raw) | _annotation_tokens(raw, tree)
    out: list[Token] = []
    for i, tok in enumerate(raw):
        if i in dropped:
            continue
        before = raw[i - 1] if i else None
        after = raw[i + 1] if i + 1 < len(raw) else None
        text = normalise_token(tok, before, after, bound)
        if text is None:
            continue
        if last is None:
            out.append(Token(text, first + tok.start[0] - 1))
        else:
            out.append(Token(text, first, last))
    return _separated(out)


def _separated(tokens: list[Token]) -> list[Token]:
    """One separator between statements; `if x: y` is the same as two lines."""
    out: list[Token] = []
    for tok in tokens:
        if tok.text == NEWLINE and (not out or out[-1].text in (NEWLINE, ":")):
            continue
        out.append(tok)
    return out


def _grouping_parentheses(raw: list[tokenize.TokenInfo]) -> set[int]:
    """Positions of the parentheses that only group (not those of a call or a def)."""
    found, stack = set(), []
    for i, tok in enumerate(raw):
        if tok.string == "(":
            before = raw[i - 1] if i else None
            call = before is not None and (
                (before.type == token_types.NAME and not keyword.iskeyword(before.string))
                or before.string in (")", "]"))
            stack.append(None if call else i)
        elif tok.string == ")" and stack:
            opening = stack.pop()
            if opening is not None:
                found.update((opening, i))
    return found


def _is_statement_start(tok: tokenize.TokenInfo | None) -> bool:
    return tok is None or tok.type == token_types.NEWLINE or tok.string == ";"


def normalise_token(tok: tokenize.TokenInfo, before, after,
                    bound: set[str] | None) -> str | None:
    """The text a token stands for in a normalised stream (None: left out), given the tokens
    before and after it (None at the ends). `bound`: names the code binds (they become V);
    None keeps only builtins and attribute names, every other name becoming V (for code that
    does not parse, and for grader.integrity.graded, which does not care whose names they are)."""
    if tok.type == token_types.NEWLINE or tok.string == ";":
        return NEWLINE
    if tok.type == token_types.STRING:
        if _is_statement_start(before) and (after is None or after.type == token_types.NEWLINE):
            return None  # a docstring or a bare string statement: a comment in disguise
        return "STR"
    if tok.type == token_types.NUMBER:
        return "NUM"
    if tok.type == token_types.NAME:
        name = tok.string
        if keyword.iskeyword(name):
            return name
        if bound is None:  # unparsable: only builtins and attribute names are kept
            keep = name in BUILTIN_NAMES or (before is not None and before.string == ".")
            return name if keep else "V"
        return "V" if name in bound else name
    if tok.string == "," and after is not None and after.string in (")", "]", "}"):
        return None  # trailing comma
    return tok.string


# ---------------------------------------------------------------- fingerprints


def _hash(texts: Iterable[str]) -> int:
    digest = hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def kgrams(tokens: list[Token], k: int = K) -> list[Fingerprint]:
    """A hash for every run of k consecutive tokens (one for the whole stream if shorter)."""
    if not tokens:
        return []
    if len(tokens) < k:
        return [Fingerprint(_hash(t.text for t in tokens), tokens[0].line,
                            tokens[-1].last_line)]
    return [Fingerprint(_hash(t.text for t in tokens[i:i + k]), tokens[i].line,
                        tokens[i + k - 1].last_line)
            for i in range(len(tokens) - k + 1)]


def winnow(grams: list[Fingerprint], window: int = WINDOW) -> list[Fingerprint]:
    """Schleimer et al.'s winnowing: the smallest hash of each window of `window` k-grams (the
    rightmost on ties), each position once. Every match of K + window - 1 tokens is found."""
    if len(grams) <= window:
        return [min(grams, key=lambda f: f.hash)] if grams else []
    chosen: dict[int, Fingerprint] = {}
    for start in range(len(grams) - window + 1):
        best = start
        for i in range(start, start + window):
            if grams[i].hash <= grams[best].hash:
                best = i
        chosen[best] = grams[best]
    return [chosen[i] for i in sorted(chosen)]


def fingerprint(source: str, given: set[int] | frozenset[int] = frozenset(),
                context: frozenset[str] = frozenset(), k: int = K,
                window: int = WINDOW) -> list[Fingerprint]:
    """Winnowed fingerprints of `source`, without those whose hash is in `given`."""
    grams = kgrams(tokenise(source, context), k)
    return [f for f in winnow(grams, window) if f.hash not in given]


def given_hashes(sources: Iterable[str], context: frozenset[str] = frozenset(),
                 k: int = K) -> set[int]:
    """Every k-gram hash of the given code (all of them, not winnowed: excluded wherever)."""
    return {f.hash for source in sources for f in kgrams(tokenise(source, context), k)}


def context_names(sources: Iterable[str]) -> frozenset[str]:
    """Names bound anywhere in these sources (a notebook's cells, the library's files)."""
    names: set[str] = set()
    for source in sources:
        names |= bound_names(_clean(source)) or set()
    return frozenset(names)


# ---------------------------------------------------------------- comparing


def line_ranges(lines: Iterable[int]) -> str:
    """[3, 4, 5, 7] -> '3-5,7'."""
    parts, run = [], []
    for line in sorted(set(lines)):
        if run and line == run[-1] + 1:
            run.append(line)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [line]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def compare(doc: Document, other: Document, threshold: float = THRESHOLD,
            min_shared: int = MIN_SHARED) -> Match | None:
    """The match of `doc` (a student's cell) with `other`, or None when it is not reported."""
    mine, theirs = doc.hashes, other.hashes
    shared = mine & theirs
    if not shared or len(shared) < min_shared:
        return None
    score = len(shared) / min(len(mine), len(theirs))
    if score < threshold:
        return None
    return Match(doc.owner, doc.assignment, doc.cell, other.kind, other.owner, other.cell,
                 round(score, 3), len(shared), line_ranges(doc.lines(shared)),
                 line_ranges(other.lines(shared)))


def compare_library(doc: Document, library: list[Document], threshold: float = THRESHOLD,
                    min_shared: int = MIN_SHARED) -> Match | None:
    """The match of `doc` with the library. A cell may paste code from several library files
    (a function and the argument checks it calls from another module), so files are added
    greedily: first the one sharing most fingerprints, then each that adds at least
    `min_shared` more that no file chosen already has. Fragments of boilerplate that many files
    share (an nn.Module's __init__) add fewer than that and never join. `source_cell` names the
    files chosen (joined by " + "), `source_lines` their lines in the same order ("; ")."""
    mine, got, chosen = doc.hashes, set(), []
    while len(chosen) < len(library):
        gains = [((mine & ref.hashes) - got, ref) for ref in library if ref not in chosen]
        new, ref = max(gains, key=lambda gain: (len(gain[0]), gain[1].cell))
        if not new or (chosen and len(new) < min_shared):
            break
        got |= new
        chosen.append(ref)
    if not chosen:
        return None
    whole = Document(LIBRARY, doc.assignment, " + ".join(ref.cell for ref in chosen),
                     [f for ref in chosen for f in ref.fingerprints], LIBRARY)
    match = compare(doc, whole, threshold, min_shared)
    if match is None or len(chosen) == 1:
        return match
    lines = "; ".join(line_ranges(ref.lines(got)) for ref in chosen)
    return Match(match.student_id, match.assignment, match.cell, match.kind, match.source,
                 match.source_cell, match.score, match.shared, match.lines, lines)


def score(a: str, b: str, given: set[int] | frozenset[int] = frozenset()) -> float:
    """Similarity of two sources in [0, 1] (for calibration and tests)."""
    fa, fb = {f.hash for f in fingerprint(a, given)}, {f.hash for f in fingerprint(b, given)}
    if not fa or not fb:
        return 0.0
    return len(fa & fb) / min(len(fa), len(fb))


def drop_common(students: list[Document], limit: int = COMMON_LIMIT) -> list[Document]:
    """The documents without the fingerprints that more than `limit` students' same cell has."""
    counts: Counter[tuple[str, str, int]] = Counter()
    for doc in students:
        counts.update((doc.assignment, doc.cell, h) for h in doc.hashes)
    return [Document(doc.owner, doc.assignment, doc.cell,
                     [f for f in doc.fingerprints
                      if counts[doc.assignment, doc.cell, f.hash] <= limit], doc.kind,
                     doc.source)
            for doc in students]


def find_matches(students: list[Document], references: list[Document],
                 threshold: float = THRESHOLD, min_shared: int = MIN_SHARED) -> list[Match]:
    """Every reported pair: student vs student on the same cell (each pair once, passages
    common to the class left out), and every student cell vs every reference (in full: a class
    that all copied the library is still reported). Highest score first."""
    matches = []
    by_cell: dict[tuple[str, str], list[Document]] = {}
    for doc in drop_common(students):
        by_cell.setdefault((doc.assignment, doc.cell), []).append(doc)
    for docs in by_cell.values():
        for a, b in combinations(sorted(docs, key=lambda d: d.owner), 2):
            match = compare(a, b, threshold, min_shared)
            if match is not None:
                matches.append(match)
    library = [ref for ref in references if ref.kind == LIBRARY]
    for doc in students:
        found = [compare(doc, ref, threshold, min_shared)
                 for ref in references if ref.kind != LIBRARY and ref.cell == doc.cell]
        found.append(compare_library(doc, library, threshold, min_shared))
        matches += [match for match in found if match is not None]
    return sorted(matches, key=lambda m: (-m.score, m.assignment, m.cell, m.student_id,
                                          m.source, m.source_cell))


# ---------------------------------------------------------------- notebooks and files


def read_notebook(path: Path, base: Path | None = None) -> dict | None:
    """A notebook's JSON, or None (absent, too large, not a notebook, or reached through a link
    anywhere below `base`). Student files are data: never followed through a link, never run."""
    try:
        below = [path, *path.parents[:len(path.relative_to(base).parts) - 1]] if base else [path]
        if any(p.is_symlink() for p in below):
            return None
        if not path.is_file() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cells"), list) else None


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source[:MAX_CELL_CHARS] if isinstance(source, str) else ""


def answer_cells(nb: dict | None) -> dict[str, str]:
    """grade_id -> source of every code answer cell (nbgrader `solution: true`)."""
    found = {}
    for cell in (nb or {}).get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if cell_roles.is_solution(cell) and cell_roles.grade_id(cell):
            found[cell_roles.grade_id(cell)] = _source(cell)
    return found


def code_cells(nb: dict | None) -> list[str]:
    return [_source(c) for c in (nb or {}).get("cells", [])
            if isinstance(c, dict) and c.get("cell_type") == "code"]


def library_documents(library: Path | None, given: set[int]) -> list[Document]:
    """One reference per library file (compared with every answer cell)."""
    if library is None or not library.is_dir():
        return []
    sources = {path: path.read_text(encoding="utf-8") for path in sorted(library.glob("*.py"))}
    context = context_names(sources.values())
    return [Document(LIBRARY, "", path.relative_to(library.parent).as_posix(),
                     [f for f in _library_fingerprints(source, context) if f.hash not in given],
                     LIBRARY, source)
            for path, source in sources.items()]


@lru_cache(maxsize=256)
def _library_fingerprints(source: str, context: frozenset[str]) -> tuple[Fingerprint, ...]:
    """A library file's winnowed fingerprints, none left out. The same for every assignment of a
    run (only `given` differs), so computed once per run: tokenising the library's ~20 files
    took ~1.2 s of CPU, paid again for each assignment before."""
    return tuple(fingerprint(source, frozenset(), context))


def notebook_documents(owner: str, assignment_id: str, nb: dict | None, given: set[int],
                       kind: str = STUDENT) -> list[Document]:
    """A notebook's answer cells, names bound in any of its cells counted as bound."""
    context = context_names(code_cells(nb))
    return [Document(owner, assignment_id, gid, fingerprint(src, given, context), kind, src)
            for gid, src in answer_cells(nb).items()]


def assignment_documents(workdir: Path, assignment_id: str,
                         library: Path | None) -> tuple[list[Document], list[Document]]:
    """(students' answer cells, references) of one assignment in an autograde workdir."""
    layout = CourseLayout(workdir)
    release = read_notebook(layout.released_notebook(assignment_id))
    given = given_hashes(code_cells(release), context_names(code_cells(release)))
    solution = read_notebook(layout.source_notebook(assignment_id))
    references = notebook_documents(SOLUTION, assignment_id, solution, given, SOLUTION)
    references += [Document(d.owner, assignment_id, d.cell, d.fingerprints, LIBRARY, d.source)
                   for d in library_documents(library, given)]
    students = []
    submitted = layout.submitted_root()
    for folder in sorted(submitted.iterdir()) if submitted.is_dir() else []:
        nb = read_notebook(folder / assignment_id / f"{assignment_id}.ipynb", submitted)
        students += notebook_documents(folder.name, assignment_id, nb, given)
    return students, references


def similarity_report(workdir: Path, assignments: list[str], library: Path | None,
                      log=print) -> list[Match]:
    """Find the matches of every assignment in `workdir`; write DIR/similarity.csv and the
    side-by-side pages DIR/similarity/*.html (grader.integrity.similarity_html). Pages that cannot
    be written (DIR/similarity is a link or a file) are logged and left out; the CSV is not."""
    matches: list[Match] = []
    documents: dict[tuple[str, str, str, str], Document] = {}
    for assignment_id in assignments:
        students, references = assignment_documents(workdir, assignment_id, library)
        matches += find_matches(students, references)
        documents.update({(assignment_id, d.kind, d.owner, d.cell): d
                          for d in students + references})

    def sources(m: Match) -> tuple[str, list[tuple[str, str]]]:
        mine = documents[m.assignment, STUDENT, m.student_id, m.cell].source
        if m.kind == LIBRARY:
            return mine, [(name, documents[m.assignment, LIBRARY, LIBRARY, name].source)
                          for name in m.source_cell.split(" + ")]
        return mine, [("", documents[m.assignment, m.kind, m.source, m.source_cell].source)]

    try:
        pages = write_reports(workdir, matches, sources)
    except (OSError, ValueError) as err:
        log(f"warning: no side-by-side pages ({type(err).__name__}: {err})")
        pages = None
    write_csv(CourseLayout(workdir).similarity_csv(), matches, pages)
    return matches


def write_csv(path: Path, matches: list[Match], pages: list[str] | None = None) -> None:
    """DIR/similarity.csv; `pages`: each match's side-by-side page, relative to DIR."""
    pages = pages or [""] * len(matches)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for m, page in zip(matches, pages, strict=True):
            writer.writerow([m.student_id, m.assignment, m.cell, m.kind, m.source, m.source_cell,
                             f"{m.score:.3f}", m.shared, m.lines, m.source_lines, page])


def flags_by_submission(matches: Iterable[Match]) -> dict[tuple[str, str], set[str]]:
    """(student, assignment) -> similarity flags; a student-student pair flags both."""
    flags: dict[tuple[str, str], set[str]] = {}
    for m in matches:
        flags.setdefault((m.student_id, m.assignment), set()).add(m.flag)
        if m.kind == STUDENT:
            flags.setdefault((m.source, m.assignment), set()).add(STUDENT_FLAG)
    return flags


def default_library(solutions: Path) -> Path:
    """The course library next to solutions/: ROOT/src/resnet_course."""
    return Path(solutions).resolve().parent / "src" / "resnet_course"


def flag_similar(workdir: Path, assignments: list[str], solutions: Path, outcomes: dict,
                 log=print) -> None:
    """autograde's hook: write DIR/similarity.csv and add the similarity flags to the outcomes
    ((student, assignment) -> Outcome). Scores are not touched; a failure here is logged and
    leaves the grades alone."""
    try:
        matches = similarity_report(workdir, assignments, default_library(solutions), log)
    except Exception as err:  # the report is advice: it must never cost a run its grades
        log(f"warning: similarity report failed ({type(err).__name__}: {err})")
        return
    for key, flags in flags_by_submission(matches).items():
        if key in outcomes:
            outcomes[key].flags = sorted({*outcomes[key].flags, *flags})
    if matches:
        log(f"similarity: {len(matches)} pair(s) of answer cells to review in "
            f"{CourseLayout(workdir).similarity_csv()} (side by side: "
            f"{CourseLayout(workdir).similarity_pages() / 'index.html'})")
