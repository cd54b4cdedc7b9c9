"""Submissions downloads of the toy class of tests/fixtures/lms/, with member names in the forms
Canvas's "Download Submissions" and Moodle's "Download all submissions" write
(grader/records/collect.py cites the sources). Used by tests/grader/records/test_collect.py and the
round trips of
tests/grader/records/test_export.py.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path


def notebook(tag: str) -> bytes:
    """A tiny nbformat-4 notebook whose bytes say whose it is."""
    return (b'{"cells": [{"cell_type": "markdown", "metadata": {}, "source": "' + tag.encode()
            + b'"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')


def make_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():  # a symlink member, as `zip -y` stores it
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return path


CANVAS_MEMBERS = {
    "leeann_501_90001_toy.ipynb": notebook("ann"),
    "okaforbo_LATE_502_90002_toy-1.ipynb": notebook("bo"),  # late, resubmitted
    "ngcy_503_90003_toy.ipynb": notebook("cy"),
    "wueli_505_90010_toy.ipynb": notebook("eli"),            # no SIS login: Canvas ID 505
    "ngcy_503_90004_notes.pdf": b"%PDF-1.4",                 # not a notebook
    "smithzed_599_90009_toy.ipynb": notebook("zed"),         # not in the roster
    "../../escape_501_1_toy.ipynb": notebook("evil"),        # path traversal
}

MOODLE_MEMBERS = {
    "Ann Lee_1234501_assignsubmission_file_/toy.ipynb": notebook("ann"),
    "Bo Okafor_1234502_assignsubmission_file_/my work.ipynb": notebook("bo"),
    "Bo Okafor_1234502_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>",
    "Cy Ng_1234503_assignsubmission_file_/toy.ipynb": notebook("cy"),
    "Cy Ng_1234503_assignsubmission_file_/toy-draft.ipynb": notebook("cy draft"),
}
