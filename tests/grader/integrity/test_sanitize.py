"""grader/integrity/sanitize.py: a student notebook with its active content removed before a
feedback page or formgrader renders it. Every XSS payload kind, rendered in a browser, is in
tests/grader/test_hostile_files.py; here each rule on its own."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

from grader.files import UnsafeFile
from grader.integrity.sanitize import (
    PAGE_METADATA,
    block_attributes,
    block_links,
    sanitize_file,
    sanitize_notebook,
    unsafe_target,
)
from grader.isolation.limits import RUN_METADATA_KEY


@pytest.mark.parametrize("target", ["javascript:alert(1)", "JaVaScRiPt:x", "data:text/html,x",
                                    "vbscript:x", "java\tscript:x", "&#106;avascript:x",
                                    "&amp;#106;avascript:x", " javascript:x"])
def test_unsafe_targets(target):
    assert unsafe_target(target)


@pytest.mark.parametrize("target", ["https://example.org", "http://x", "mailto:a@b.c",
                                    "attachment:fig.png", "fig.png", "#section", "../page.html"])
def test_safe_targets(target):
    assert not unsafe_target(target)


def test_block_links_in_markdown():
    text = ("[ok](https://example.org) [bad](javascript:void) ![img](data:image/svg,x)\n"
            "[ref]: vbscript:x\n")
    assert block_links(text) == ("[ok](https://example.org) [bad](#blocked) "
                                 "![img](#blocked)\n[ref]: #blocked\n")


def test_block_attributes():
    html = '<a href="javascript:1">a</a><img src="https://x/y.png"><a href="#top">t</a>'
    assert block_attributes(html) == ('<a href="#blocked">a</a><img src="https://x/y.png">'
                                      '<a href="#top">t</a>')


def notebook(bad_id: bool = True):
    md = new_markdown_cell('hi <script>alert(1)</script><b onclick="x()">b</b>')
    md.attachments = {"fig.png": {"image/png": "iVBO", "image/svg+xml": "<svg/>"},
                      "../evil": {"image/png": "iVBO"}}
    code = new_code_cell("x", outputs=[
        new_output("display_data", data={"text/html": "<script>x</script><p>p</p>",
                                         "application/javascript": "alert(1)",
                                         "text/plain": "plain", "image/png": "iVBO"},
                   metadata={"image/png": {"width": 10, "height": "1 onerror=x"},
                             "isolated": True})])
    code.metadata = {"nbgrader": {"grade_id": "ex1", "points": 2, "solution": True,
                                  "evil": "<script>"}, "tags": ["x"]}
    nb = new_notebook(cells=[md, code, new_raw_cell("<iframe src='x'></iframe>raw")])
    if bad_id:  # after new_notebook, which validates these
        code.id = "bad id<"
        code.execution_count = "1"
    nb.metadata = {"kernelspec": {"name": "<script>"}, "evil": 1,
                   RUN_METADATA_KEY: {"flags": []}}
    return nb


def test_sanitize_notebook():
    nb = sanitize_notebook(notebook())
    md, code, raw = nb.cells
    assert "<script" not in md.source and "onclick" not in md.source and "<b>b</b>" in md.source
    assert md.attachments == {"fig.png": {"image/png": "iVBO"}}
    out = code.outputs[0]
    assert sorted(out.data) == ["image/png", "text/html", "text/plain"]
    assert "<script" not in out.data["text/html"] and "<p>p</p>" in out.data["text/html"]
    assert out.metadata == {"image/png": {"width": 10}}
    assert code.metadata == {"nbgrader": {"grade_id": "ex1", "points": 2, "solution": True}}
    assert code.execution_count is None and code.id == "cell-1"
    assert "<iframe" not in raw.source
    assert nb.metadata == {**PAGE_METADATA, RUN_METADATA_KEY: {"flags": []}}


def test_sanitize_file_rewrites_in_place_and_refuses_a_link(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(bad_id=False), path)
    sanitize_file(path)
    assert "<script" not in path.read_text()
    (tmp_path / "link.ipynb").symlink_to(path)
    with pytest.raises(UnsafeFile):
        sanitize_file(tmp_path / "link.ipynb")
