"""The instructor's grading tools (`python -m grader --help`), in rooms by trust zone: see
grader/README.md for the map and the life of one submission."""

import sys

# jsonschema, which nbformat imports, imports rfc3987_syntax (when installed) for two optional
# format checkers, "iri" and "uri-reference"; importing it compiles a Lark grammar, 0.8 s of CPU
# in every grader process, and nothing here validates with a format checker (nbformat's
# validation does not). Marked absent, jsonschema leaves those two checkers out. A graded
# kernel, which imports this package too, gets its imports back (restore_imports()).
SKIPPED_IMPORTS = ("rfc3987_syntax",)
for _name in SKIPPED_IMPORTS:
    sys.modules.setdefault(_name, None)


def restore_imports() -> None:
    """Undo the marks above: student code imports exactly what it would in its own Jupyter."""
    for name in SKIPPED_IMPORTS:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
