"""grader/integrity/answer_scan.py: publish's search for graded answers in a tree of files
(a graded name defined with more than a stub, or a graded implementation under any name), in
.py files, notebooks, HTML <pre> blocks and fenced Markdown. Publish's own use of it is in
tests/grader/commands/test_publish.py."""

import json

import pytest

from grader.integrity.answer_scan import Answer, code_units, defined_with_body, find_answers
from grader.integrity.graded import Definition

SOURCE = '''def residual_block(x, weight, bias):
    hidden = torch.relu(x @ weight + bias)
    total = hidden @ weight.T + x
    scaled = total / math.sqrt(weight.shape[0])
    return torch.relu(scaled) + bias.mean() * 0.5
'''
GRADED = [Definition("residual_block", "solutions/ex1", SOURCE)]
RENAMED = SOURCE.replace("residual_block", "helper").replace("hidden", "h").replace("total", "t")


@pytest.mark.parametrize("body", [
    "pass", "...", "raise NotImplementedError", "raise NotImplementedError('write it')",
    '"""Docstring only."""', '"""Doc."""\n    raise NotImplementedError',
])
def test_stubs_are_not_answers(body):
    assert defined_with_body(f"def residual_block(x):\n    {body}\n", {"residual_block"}) == set()


def test_definitions_with_a_body_are_answers_at_any_depth():
    code = ("class Net:\n    def residual_block(self):\n        return 1\n"
            "def other():\n    return 2\n")
    assert defined_with_body(code, {"residual_block", "other", "absent"}) == {
        "residual_block", "other"}
    stub_class = "class Net:\n    '''Doc.'''\n    def forward(self):\n        pass\n"
    assert defined_with_body(stub_class, {"Net"}) == set()
    assert defined_with_body("def (:", {"x"}) == set()  # unparsable: nothing


def test_code_units_by_file_kind(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": ["a = 1\n", "b = 2"],
                     "outputs": [{"output_type": "stream", "text": ["printed"]},
                                 {"output_type": "execute_result",
                                  "data": {"text/plain": "result"}}]},
                    {"cell_type": "markdown", "source": "words", "outputs": [{"text": "no"}]}]}
    files = {"a.py": "x = 1", "n.ipynb": json.dumps(nb),
             "p.html": "<p>text</p><pre>code <b>one</b></pre><pre>two</pre>",
             "m.md": "prose\n```python\nfenced\n```\nmore\n~~~\nsecond\n~~~\n",
             "plain.txt": "all of it", "img.png": "x", "bad.py": b"\xff\xfe"}
    for name, text in files.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    units = {name: list(code_units(tmp_path / name)) for name in files}
    assert units == {"a.py": ["x = 1"], "n.ipynb": ["a = 1\nb = 2", "printed", "result", "words"],
                     "p.html": ["code one", "two"], "m.md": ["fenced\n", "second\n"],
                     "plain.txt": ["all of it"], "img.png": [], "bad.py": []}


def test_find_answers(tmp_path):
    (tmp_path / "site" / "_sources").mkdir(parents=True)
    (tmp_path / "starter.py").write_text("def residual_block(x, weight, bias):\n"
                                         "    raise NotImplementedError\n")
    (tmp_path / "site" / "page.html").write_text(f"<pre>{RENAMED}</pre>")
    (tmp_path / "site" / "_sources" / "leak.md").write_text(f"```\n{SOURCE}```\n")
    (tmp_path / "linked.py").symlink_to(tmp_path / "site" / "_sources" / "leak.md")
    found = find_answers(tmp_path, GRADED)
    assert [str(a) for a in found] == [
        "site/_sources/leak.md: defines residual_block",
        "site/_sources/leak.md: shows the implementation of residual_block",
        "site/page.html: shows the implementation of residual_block"]
    assert found[0] == Answer("site/_sources/leak.md", "residual_block", "defines")
