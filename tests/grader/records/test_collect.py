"""`python -m grader collect` (grader.records.collect) on submissions downloads named as Canvas and
Moodle name them, matched on the fixture rosters in tests/fixtures/lms/ (see its README).

Canvas "Download Submissions": flat files `<sortable name>_[LATE_]<user id>_<attachment id>_
<file>`. Moodle "Download all submissions": folders `<Full name>_<participant id>_
assignsubmission_file_/<file>` (or flat files with the same prefix). Sources in
grader/records/collect.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import TOY, read_csv
from lms_downloads import CANVAS_MEMBERS, MOODLE_MEMBERS, make_zip, notebook

from grader.commands.cli import main
from grader.records.collect import CollectError, Outcome, collect, member_name, run
from grader.records.roster import read_roster

LMS = Path(__file__).parents[2] / "fixtures" / "lms"
AID = "toy"


def by_outcome(outcomes: list[Outcome]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for o in outcomes:
        found.setdefault(o.outcome, []).append((o.member, o.student_id))
    return {k: sorted(v) for k, v in found.items()}


def hand_in(submissions: Path, student_id: str) -> bytes:
    return (submissions / student_id / AID / f"{AID}.ipynb").read_bytes()


def test_canvas_download(tmp_path: Path):
    download = make_zip(tmp_path / "submissions.zip", CANVAS_MEMBERS,
                        links={"leeann_501_90005_link.ipynb": "/etc/passwd"})
    subs = tmp_path / "SUBMISSIONS"
    outcomes = collect(download, read_roster(LMS / "canvas_gradebook.csv"), AID, subs)
    got = by_outcome(outcomes)
    assert got["collected"] == [("leeann_501_90001_toy.ipynb", "ann"),
                                ("ngcy_503_90003_toy.ipynb", "cy"),
                                ("okaforbo_LATE_502_90002_toy-1.ipynb", "bo"),
                                ("wueli_505_90010_toy.ipynb", "505")]
    assert got["late"] == [("okaforbo_LATE_502_90002_toy-1.ipynb", "bo")]
    assert got["not-a-notebook"] == [("ngcy_503_90004_notes.pdf", "cy")]
    assert got["unmatched"] == [("smithzed_599_90009_toy.ipynb", "")]
    assert got["refused"] == [("../../escape_501_1_toy.ipynb", ""),
                              ("leeann_501_90005_link.ipynb", "")]
    assert got["no-hand-in"] == [("", "dee")]  # every roster student is accounted for
    assert hand_in(subs, "ann") == notebook("ann") and hand_in(subs, "bo") == notebook("bo")
    # nothing but the three hand-ins was written, nothing outside SUBMISSIONS
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                     if p.is_file())
    assert written == ["SUBMISSIONS/505/toy/toy.ipynb", "SUBMISSIONS/ann/toy/toy.ipynb",
                       "SUBMISSIONS/bo/toy/toy.ipynb", "SUBMISSIONS/cy/toy/toy.ipynb",
                       "submissions.zip"]


@pytest.mark.parametrize("roster", ["moodle_worksheet.csv", "moodle_gradebook.csv"])
def test_moodle_download_in_folders(tmp_path: Path, roster: str):
    download = make_zip(tmp_path / "dl.zip", MOODLE_MEMBERS)
    subs = tmp_path / "SUBMISSIONS"
    got = by_outcome(collect(download, read_roster(LMS / roster), AID, subs))
    # the worksheet matches on participant ids, the gradebook export on full names
    assert [s for _, s in got["collected"]] == ["ann@example.edu", "bo@example.edu",
                                                "cy@example.edu"]
    assert got["not-chosen"] == [("Cy Ng_1234503_assignsubmission_file_/toy-draft.ipynb",
                                  "cy@example.edu")]
    assert got["not-a-notebook"] == [
        ("Bo Okafor_1234502_assignsubmission_onlinetext_/onlinetext.html", "bo@example.edu")]
    assert got["no-hand-in"] == [("", "dee@example.edu")]
    assert hand_in(subs, "cy@example.edu") == notebook("cy")  # toy.ipynb, not the draft
    assert hand_in(subs, "bo@example.edu") == notebook("bo")  # renamed to toy.ipynb


def test_moodle_flat_download_and_ambiguous_names(tmp_path: Path):
    """Without "download in folders" the prefix is on the file name; a name two roster
    students share is reported, never guessed."""
    roster_csv = tmp_path / "gradebook.csv"
    text = (LMS / "moodle_gradebook.csv").read_text(encoding="utf-8-sig")
    roster_csv.write_text(text + "Ann,Lee,S0009,,,ann.lee2@example.edu,-,-,1796634000\n",
                          encoding="utf-8")
    download = make_zip(tmp_path / "dl.zip", {
        "Ann Lee_77_assignsubmission_file_toy.ipynb": notebook("which ann?"),
        "Cy Ng_78_assignsubmission_file_toy.ipynb": notebook("cy")})
    got = by_outcome(collect(download, read_roster(roster_csv), AID, tmp_path / "S"))
    assert got["collected"] == [("Cy Ng_78_assignsubmission_file_toy.ipynb", "cy@example.edu")]
    assert got["unmatched"] == [("Ann Lee_77_assignsubmission_file_toy.ipynb", "")]
    assert not (tmp_path / "S" / "ann@example.edu").exists()


def test_never_overwrites_without_saying(tmp_path: Path):
    roster = read_roster(LMS / "canvas_gradebook.csv")
    subs = tmp_path / "SUBMISSIONS"
    first = make_zip(tmp_path / "a.zip", {"leeann_501_1_toy.ipynb": notebook("v1")})
    second = make_zip(tmp_path / "b.zip", {"leeann_501_2_toy.ipynb": notebook("v2")})
    assert by_outcome(collect(first, roster, AID, subs))["collected"][0][1] == "ann"
    assert "unchanged" in by_outcome(collect(first, roster, AID, subs))
    kept = by_outcome(collect(second, roster, AID, subs))
    assert kept["kept-existing"] == [("leeann_501_2_toy.ipynb", "ann")]
    assert hand_in(subs, "ann") == notebook("v1")
    lines: list[str] = []
    assert run(second, LMS / "canvas_gradebook.csv", AID, subs, replace=True,
               log=lines.append) == 0
    assert any(line.startswith("replaced: leeann_501_2_toy.ipynb (ann)") for line in lines)
    assert hand_in(subs, "ann") == notebook("v2")


def test_size_limits_and_links_in_the_way(tmp_path: Path):
    roster = read_roster(LMS / "canvas_gradebook.csv")
    subs = tmp_path / "SUBMISSIONS"
    big = make_zip(tmp_path / "big.zip", {"leeann_501_1_toy.ipynb": b" " * 5000 + b"{}"})
    # highly compressible: the limit is on bytes actually read, not on the header's claim
    assert by_outcome(collect(big, roster, AID, subs, max_file_bytes=1000))["too-large"]
    assert by_outcome(collect(big, roster, AID, subs, max_total_bytes=100))["too-large"]
    (subs / "bo" / AID).mkdir(parents=True)
    (subs / "bo" / AID / f"{AID}.ipynb").symlink_to(tmp_path / "outside.ipynb")
    linked = make_zip(tmp_path / "l.zip", {"okaforbo_502_1_toy.ipynb": notebook("bo")})
    got = by_outcome(collect(linked, roster, AID, subs))
    assert got["refused"] == [("okaforbo_502_1_toy.ipynb", "bo")]
    assert not (tmp_path / "outside.ipynb").exists()


def test_bad_download_and_report(tmp_path: Path):
    (tmp_path / "not.zip").write_text("hello")
    with pytest.raises(CollectError, match="not a readable zip"):
        collect(tmp_path / "not.zip", read_roster(LMS / "canvas_gradebook.csv"), AID,
                tmp_path / "S")
    download = make_zip(tmp_path / "dl.zip", CANVAS_MEMBERS)
    lines: list[str] = []
    status = run(download, LMS / "canvas_gradebook.csv", AID, tmp_path / "S",
                 report=tmp_path / "report.csv", log=lines.append)
    assert status == 1  # zed's notebook (not in the roster) and the traversal were not placed
    assert any(line.startswith("unmatched: smithzed_599_90009_toy.ipynb") for line in lines)
    rows = read_csv(tmp_path / "report.csv")
    assert {r["member"] for r in rows} >= set(CANVAS_MEMBERS)  # every member is in the report
    with pytest.raises(CollectError, match="moodle worksheet"):
        run(download, LMS / "moodle_worksheet.csv", AID, tmp_path / "S", lms="canvas",
            log=lines.append)


def test_cli_collect(tmp_path: Path, capsys):
    download = make_zip(tmp_path / "dl.zip", {"leeann_501_1_toy.ipynb": notebook("ann")})
    subs = tmp_path / "SUBMISSIONS"
    argv = ["collect", str(download), str(subs), "--roster", str(LMS / "canvas_gradebook.csv"),
            "--root", str(TOY)]
    assert main(argv) == 2  # no --assignment
    assert "needs --assignment" in capsys.readouterr().err
    assert main(argv + ["--assignment", AID]) == 0
    assert hand_in(subs, "ann") == notebook("ann")
    assert "no-hand-in" in capsys.readouterr().out  # bo, cy and dee


def test_nbgrader_zip_collect_uses_the_collector(tmp_path: Path, monkeypatch):
    """nbgrader's own `zip_collect` with grader.records.collect.SafeExtractor and CanvasCollector:
    each notebook lands in submitted/<roster id>/<assignment>/, named after the assignment."""
    from nbgrader.apps import ZipCollectApp

    from grader.bridge.course import put_venv_on_path

    put_venv_on_path()
    (tmp_path / "release" / AID).mkdir(parents=True)
    (tmp_path / "release" / AID / f"{AID}.ipynb").write_bytes(notebook("release"))
    archive = tmp_path / "downloaded" / AID / "archive"
    archive.mkdir(parents=True)
    make_zip(archive / "submissions.zip", CANVAS_MEMBERS,
             links={"leeann_501_90005_link.ipynb": "/etc/passwd"})
    monkeypatch.chdir(tmp_path)
    app = ZipCollectApp()
    app.initialize([AID, f"--CourseDirectory.root={tmp_path}",
                    "--extractor=grader.records.collect.SafeExtractor",
                    "--collector=grader.records.collect.CanvasCollector",
                    f"--CanvasCollector.roster={LMS / 'canvas_gradebook.csv'}"])
    app.start()
    submitted = sorted(p.relative_to(tmp_path / "submitted").as_posix()
                       for p in (tmp_path / "submitted").rglob("*.ipynb"))
    assert submitted == ["505/toy/toy.ipynb", "ann/toy/toy.ipynb", "bo/toy/toy.ipynb",
                         "cy/toy/toy.ipynb"]
    # the traversal and the link were never unpacked (SafeExtractor), nothing left the course
    extracted = sorted(p.name for p in (tmp_path / "downloaded" / AID / "extracted").rglob("*")
                       if p.is_file())
    assert "escape_501_1_toy.ipynb" not in extracted and "leeann_501_90005_link.ipynb" not in \
        extracted and "leeann_501_90001_toy.ipynb" in extracted
    assert not (tmp_path.parent / "escape_501_1_toy.ipynb").exists()
    assert (tmp_path / "submitted" / "bo" / AID / f"{AID}.ipynb").read_bytes() == notebook("bo")


def test_names_written_without_the_utf8_flag(tmp_path: Path):
    """Zip writers that store UTF-8 names without the UTF-8 flag: Python reads them as cp437;
    the name is recovered, so a Moodle name with an accent still matches the roster."""
    real = "Dee Díaz_1234504_assignsubmission_file_/toy.ipynb"
    info = zipfile.ZipInfo(real.encode("utf-8").decode("cp437"))
    assert info.flag_bits & 0x800 == 0 and member_name(info) == real
    download = make_zip(tmp_path / "dl.zip", {real: notebook("dee")})  # Python sets the flag
    got = by_outcome(collect(download, read_roster(LMS / "moodle_gradebook.csv"), AID,
                             tmp_path / "S"))
    assert got["collected"] == [(real, "dee@example.edu")]
