"""grader/isolation/output_caps.py: what an executed notebook keeps is bounded (message sizes,
errors cut to fit with the traceback's end kept, the notebook cut under its limit)."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.isolation.output_caps import cap_notebook, content_size, mark_not_run, shorten_error


def test_content_size_counts_every_field():
    small = {"content": {"text": "x"}}
    assert content_size(small) == len('{"text": "x"}')
    assert content_size({"content": {"text": "x", "metadata": {"m": "y" * 1000}}}) > 1000
    assert content_size({}) == 2  # "{}"


def test_shorten_error_keeps_the_end_of_the_traceback():
    msg = {"header": {"msg_type": "error"}, "content": {
        "ename": "E" * 500, "evalue": "v" * 10_000,
        "traceback": [f"frame {i} " + "." * 100 for i in range(200)] + ["AssertionError: last"]}}
    short, size = shorten_error(msg, 2000)
    content = short["content"]
    assert short["header"] == msg["header"]
    assert len(content["ename"]) == 200 and len(content["evalue"]) == 1000
    assert content["traceback"][-1] == "AssertionError: last"
    assert 0 < len(content["traceback"]) < 50
    assert size == content_size(short) <= 2000 + 400


def test_cap_notebook_replaces_the_largest_outputs_first():
    big = new_code_cell("print('x' * 10**5)", outputs=[
        new_output("stream", name="stdout", text="x" * 100_000),
        new_output("error", ename="ValueError", evalue="v", traceback=["t"])])
    small = new_code_cell("1", outputs=[new_output("stream", name="stdout", text="ok\n")])
    nb = new_notebook(cells=[new_markdown_cell("# t"), big, small])
    nb.metadata["widgets"] = {"state": "w" * 1000}
    assert not cap_notebook(nb, 10**7)  # under the limit: untouched
    assert "widgets" in nb.metadata
    assert cap_notebook(nb, 20_000)
    assert len(nbformat.writes(nb)) <= 20_000
    assert "widgets" not in nb.metadata
    assert "outputs removed by the grader" in big.outputs[0]["text"]
    assert [o["output_type"] for o in big.outputs] == ["stream", "error"]  # it still failed
    assert big.outputs[1]["ename"] == "ValueError"
    assert small.outputs[0]["text"] == "ok\n"  # small enough once the big one went


def test_mark_not_run():
    cell = new_code_cell("x = 1")
    mark_not_run(cell)
    assert [o["ename"] for o in cell.outputs] == ["KernelDied"]
    text = new_markdown_cell("words")
    mark_not_run(text)
    assert "outputs" not in text
