"""The instructor's grading tools (`python -m grader --help`)."""

import sys

# jsonschema, which nbformat imports, imports rfc3987_syntax (when installed) for two optional
# format checkers, "iri" and "uri-reference"; importing it compiles a Lark grammar, 0.8 s of CPU
# in every grader process, and nothing here validates with a format checker (nbformat's
# validation does not). Marked absent, jsonschema leaves those two checkers out.
sys.modules.setdefault("rfc3987_syntax", None)
