"""Two editions of the book, and the reader repository's address in the text.

**Editions.** The *course* edition (default) never shows the implementation of an object that
students write in an assignment; the *self-study* edition shows the library's reference
implementation of each in a collapsed spoiler. Chapters mark such code with

    ```{graded-source} ../src/resnet_course/models.py
    :pyobject: BasicBlock
    ```

which takes every `literalinclude` option. The edition is the Sphinx setting `course_edition`,
taken from the environment variable COURSE_EDITION (`make book EDITION=self-study` sets it).
Which objects are graded is decided in grader/integrity/graded.py; tests/book/test_editions.py
checks the
HTML.

**Reader repository.** `{{ reader_repository }}` and `{{ reader_repository_name }}` in any page
(code blocks included) become `repository.url` of _config.yml and its last path component: the
full source tree, which `python -m grader publish --self-study` writes. It is set in that one place.

**Cache.** Every build of this source folder, whatever its output folder (the self-study edition
in _build/self-study, the tests' temporary builds), reuses the execution cache
_build/.jupyter_cache unless _config.yml names another. A robustness build (another seed set,
thread count or oneDNN ISA: the environment variables in ``VARIANT_ENV``) changes what the
chapters compute without changing their source, which is all the cache keys on, so it gets a
cache of its own, e.g. _build/.jupyter_cache-RESNET_COURSE_SEED_SET-1.
"""

from __future__ import annotations

import os
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.directives.code import LiteralInclude
from sphinx.errors import ConfigError

EDITIONS = ("course", "self-study")
ENV_VAR = "COURSE_EDITION"


class spoiler(nodes.General, nodes.Element):  # noqa: N801 (docutils node naming)
    """A collapsed block: <details class="spoiler"> in HTML, its children elsewhere."""


def _visit_spoiler_html(self, node: spoiler) -> None:
    summary = self.encode(node["summary"])
    self.body.append(f'<details class="spoiler"><summary>{summary}</summary>\n')


def _depart_spoiler_html(self, node: spoiler) -> None:
    self.body.append("</details>\n")


def _pass(self, node) -> None:
    pass


class GradedSource(LiteralInclude):
    """`literalinclude` of a graded implementation: nothing in the course edition, a collapsed
    spoiler in the self-study edition. The file and object are read in both editions, so a
    renamed object fails the build either way."""

    def run(self) -> list[nodes.Node]:
        included = super().run()
        if self.config.course_edition != "self-study":
            return []
        name = self.options.get("pyobject", Path(self.arguments[0]).name)
        box = spoiler(summary=f"Spoiler: the library's reference implementation of {name} "
                              "(try the exercise first)")
        box.extend(included)
        return [box]


def _check_edition(app: Sphinx, config: Config) -> None:
    if config.course_edition not in EDITIONS:
        raise ConfigError(f"{ENV_VAR} / course_edition must be one of {EDITIONS}, "
                          f"got {config.course_edition!r}")


# Environment variables that change the chapters' results (resnet_course.seeds, oneDNN's kernels).
VARIANT_ENV = ("RESNET_COURSE_SEED_SET", "RESNET_COURSE_THREADS", "ONEDNN_MAX_CPU_ISA")


def variant_suffix(environ: dict[str, str]) -> str:
    """``-NAME-value`` for each variant variable set (non-empty, and not seed set 0)."""
    parts = []
    for name in VARIANT_ENV:
        value = environ.get(name, "").strip()
        if value and not (name == "RESNET_COURSE_SEED_SET" and value == "0"):
            parts.append(f"-{name}-{''.join(c if c.isalnum() else '_' for c in value)}")
    return "".join(parts)


def _share_execution_cache(app: Sphinx, config: Config) -> None:
    if not config.nb_execution_cache_path:
        name = ".jupyter_cache" + variant_suffix(dict(os.environ))
        config.nb_execution_cache_path = str(Path(app.srcdir) / "_build" / name)


def _reader_repository(app: Sphinx) -> str:
    url = (app.config.html_theme_options or {}).get("repository_url", "")
    if not url:
        raise ConfigError("_config.yml has no repository.url (the reader repository)")
    return url.rstrip("/")


def _substitute(app: Sphinx, docname: str, source: list[str]) -> None:
    url = _reader_repository(app)
    source[0] = (source[0].replace("{{ reader_repository }}", url)
                 .replace("{{ reader_repository_name }}", url.rsplit("/", 1)[-1]))


def setup(app: Sphinx) -> dict:
    app.add_config_value("course_edition", os.environ.get(ENV_VAR, "course") or "course", "env")
    app.connect("config-inited", _check_edition)
    app.connect("config-inited", _share_execution_cache)
    app.connect("source-read", _substitute)
    app.add_node(spoiler, html=(_visit_spoiler_html, _depart_spoiler_html),
                 latex=(_pass, _pass), text=(_pass, _pass), man=(_pass, _pass),
                 texinfo=(_pass, _pass))
    app.add_directive("graded-source", GradedSource)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
