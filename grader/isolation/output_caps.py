"""Bounds on what an executed notebook keeps: one output message's size as stored, an error
output cut to fit, the whole notebook cut under its limit, and the note left in a cell that
never ran."""

from __future__ import annotations

import json

from nbformat import NotebookNode


def content_size(msg: dict) -> int:
    """Bytes of an output message as it would be stored: every field counts (a 50 MB
    metadata or traceback is as large as a 50 MB print)."""
    return len(json.dumps(msg.get("content", {}), default=str))


def shorten_error(msg: dict, room: int) -> tuple[dict, int]:
    """An error output that fits `room` bytes: name and value cut, the traceback's last lines
    kept (where the failing assert is). Returns the message and its size."""
    content = msg.get("content", {})
    ename = str(content.get("ename", "Error"))[:200]
    evalue = str(content.get("evalue", ""))[:min(2000, room // 2)]
    kept, used = [], len(ename) + len(evalue) + 100
    for line in reversed([str(t) for t in content.get("traceback", [])][-50:]):
        line = line[:room // 4]
        if used + len(line) > room:
            break
        kept.insert(0, line)
        used += len(line) + 4
    short = {**msg, "content": {"ename": ename, "evalue": evalue, "traceback": kept}}
    return short, content_size(short)


def cap_notebook(nb: NotebookNode, limit: int) -> bool:
    """Keep the executed notebook under `limit` bytes as written: drop notebook widget state,
    then replace the largest cells' outputs by a note until it fits. True when it cut."""
    import nbformat

    if len(nbformat.writes(nb)) <= limit:
        return False
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:  # cell metadata the notebook could have bloated via outputs: none
        cell.get("metadata", {}).pop("widgets", None)
    code = sorted((c for c in nb.cells if c.cell_type == "code"),
                  key=lambda c: len(json.dumps(c.get("outputs", []))), reverse=True)
    for cell in code:
        if len(nbformat.writes(nb)) <= limit:
            break
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        cell.outputs = [NotebookNode(output_type="stream", name="stdout",
                                     text="[outputs removed by the grader: the notebook was "
                                     f"larger than {limit} bytes]\n")]
        cell.outputs += [NotebookNode(output_type="error", ename=str(e.get("ename"))[:200],
                                      evalue="", traceback=[]) for e in errors[:1]]
    return True


def mark_not_run(cell: NotebookNode) -> None:
    if cell.cell_type != "code":
        return
    cell.outputs = [NotebookNode(
        output_type="error", ename="KernelDied",
        evalue="the kernel died or was stopped before this cell could run",
        traceback=["KernelDied: the kernel died or was stopped (time or memory limit, crash) "
                   "before this cell could run"])]
