"""What Canvas's and Moodle's grade imports do with a CSV, as their documentation and importers
describe it (sources in grader/records/lms_export.py), written as checks on a file read back with
Python's csv reader. Each returns what the LMS would do: which students and assignments it
fills, or raises AssertionError where the LMS would refuse, lose or misplace a grade.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s+\((?P<id>\d+)\)$")


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def canvas_import(path: Path, gradebook_export: Path) -> dict[tuple[str, str], str]:
    """Canvas Grades > Import of `path` into the course whose gradebook export is
    `gradebook_export`: (Canvas user ID, assignment id) -> grade text, for every cell it would
    set. Fails where Canvas would create a new assignment, not find a student, or reject a
    grade."""
    course = read_rows(gradebook_export)
    c_header = course[0]
    known = {m["id"]: m["title"] for h in c_header if (m := CANVAS_ASSIGNMENT.match(h))}
    people = [dict(zip(c_header, r, strict=False)) for r in course[1:]
              if r[1].strip() and "Points Possible" not in r[0]]
    rows = read_rows(path)
    header = rows[0]
    # gradebook_importer.rb: Student, ID, then optional SIS columns, then Section
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"], header
    columns = {}
    for i, h in enumerate(header[5:], start=5):
        m = CANVAS_ASSIGNMENT.match(h)
        if m and m["id"] in known:          # "Title (id)": that assignment
            columns[i] = m["id"]
            continue
        by_title = [a for a, t in known.items() if t == h]
        assert by_title, f"column {h!r} would create a NEW Canvas assignment"
        columns[i] = by_title[0]
    grades = {}
    for row in rows[1:]:
        assert len(row) == len(header), row
        if row[0].strip() == "Points Possible":
            continue
        # a student is found by ID, then SIS User ID, then SIS Login ID, then name
        who = next((p for key in ("ID", "SIS User ID", "SIS Login ID", "Student")
                    for p in people
                    if row[header.index(key)] and row[header.index(key)] == p[key]), None)
        assert who is not None, f"Canvas finds no student for {row[:5]}"
        for i, assignment in columns.items():
            if row[i] != "":                # an empty cell leaves Canvas's grade alone
                float(row[i])
                grades[who["ID"], assignment] = row[i]
    return grades


def moodle_import(path: Path, map_from: str, users: dict[str, str]) -> dict[str, dict]:
    """Moodle Grades > Import > CSV with "Map from" `map_from` to the user field whose values
    are `users` (value -> user): user -> {column: grade} for the grade columns. Fails on an
    unknown user (Moodle aborts the whole import) or a grade that is not a number, '' or '-'."""
    rows = read_rows(path)
    header = rows[0]
    assert map_from in header, header
    key = header.index(map_from)
    imported = {}
    for row in rows[1:]:
        assert len(row) == len(header), row
        assert row[key] in users, f"Moodle aborts the import: unknown user {row[key]!r}"
        cells = {}
        for i, h in enumerate(header):
            if i == key or h in ("Full name", "First name", "Last name"):
                continue
            if row[i] not in ("", "-"):
                float(row[i])
                cells[h] = row[i]
        imported[users[row[key]]] = cells
    return imported
